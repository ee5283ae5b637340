//! Unit tests of the agent stream's parser.
use super::*;

fn collect(stream: &mut Stream, chunks: &[&[u8]]) -> Vec<(String, SpoolPos)> {
    let mut got = Vec::new();
    for c in chunks {
        stream.stdout(c, &mut |_, l, p| got.push((l, p)));
    }
    got
}

#[test]
fn start_marker_and_end_record_are_found_across_chunks() {
    let mut st = Stream::new("j1-ab", SpoolPos::default(), &[]);
    let got = collect(
        &mut st,
        &[
            b"noise\n__PTUI_STA",
            b"RTED j1-ab\nline 1\nli",
            b"ne 2\npartial\0__PTUI_E",
            b"ND_j1-ab ended 0\n",
        ],
    );
    let lines: Vec<&str> = got.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(lines, ["noise", "line 1", "line 2"]);
    assert_eq!(got[2].1.out, 14);
    assert!(st.end_complete());
    assert_eq!(st.end.clone(), Some(RemoteEnd::Exited(Some(0))));
    assert_eq!(st.out.finish_at(), Some(("partial".into(), 21)));
}

#[test]
fn a_nul_in_output_that_is_not_the_marker_is_output() {
    let mut st = Stream::new("k", SpoolPos { out: 100, err: 0 }, &[]);
    let got = collect(
        &mut st,
        &[b"__PTUI_STARTED k\na\0b\n\0__PTUI_END_x", b" not ours\n"],
    );
    let lines: Vec<&str> = got.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(lines, ["a\0b", "\0__PTUI_END_x not ours"]);
    assert_eq!(got[1].1.out, 100 + 4 + 23);
    assert!(st.end.is_none());
}

#[test]
fn gone_and_lost_states_parse() {
    let mut st = Stream::new("k", SpoolPos::default(), &[]);
    collect(&mut st, &[b"__PTUI_STARTED k\n\0__PTUI_END_k gone -\n"]);
    assert_eq!(st.end.clone(), Some(RemoteEnd::Gone));
    let mut st = Stream::new("k", SpoolPos::default(), &[]);
    collect(&mut st, &[b"__PTUI_STARTED k\n\0__PTUI_END_k lost -\n"]);
    assert_eq!(st.end.clone(), Some(RemoteEnd::Lost));
}

#[test]
fn keys_are_checked() {
    assert!(check_key("j12-0af3").is_ok());
    assert!(check_key("../x").is_err());
    assert!(check_key("").is_err());
}
