//! The small grammars of Ansible's inventory files, as ansible-core reads them: host patterns
//! (`host:port`, `[v6]:port`, ranges), host-line words (shlex with comments), and values
//! (`ast.literal_eval` of a quoted string).

/// Splits a host pattern into the host (ranges still in it) and the port, as Ansible's
/// `parse_address`: `[2001:db8::1]:2201`, `web[01:03].x:2222`, `badwolf.example.com:5309`.
/// A bare IPv6 address (two or more colons) has no port.
pub fn parse_address(token: &str) -> Result<(String, Option<u16>), String> {
    let port_of = |p: &str| -> Result<u16, String> {
        p.parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("port {p:?} in host {token:?} is not a port number (1-65535)"))
    };
    // `[host]:port`: greedy, like Ansible's `^\[(.+)\]:([0-9]+)$`.
    if let Some(rest) = token.strip_prefix('[')
        && let Some(close) = rest.rfind("]:")
        && close > 0
    {
        let port = &rest[close + 2..];
        if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            return Ok((rest[..close].to_string(), Some(port_of(port)?)));
        }
    }
    // `host:port` with exactly one colon outside brackets and only digits after it.
    let mut depth = 0usize;
    let mut colons = Vec::new();
    for (i, c) in token.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => colons.push(i),
            _ => {}
        }
    }
    if let [at] = colons[..] {
        let port = &token[at + 1..];
        if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            return Ok((token[..at].to_string(), Some(port_of(port)?)));
        }
    }
    Ok((token.to_string(), None))
}

/// Expands `web[01:03].x` into web01.x, web02.x, web03.x; `[a:c]` into a, b, c; `[1:9:2]` strides.
/// A bare IPv6 address is returned as it is.
pub fn expand_range(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('[') else {
        return Ok(vec![pattern.to_string()]);
    };
    let close = pattern[open..]
        .find(']')
        .map(|c| open + c)
        .ok_or_else(|| format!("unclosed '[' in host pattern {pattern:?}"))?;
    let (head, body, tail) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    let parts: Vec<&str> = body.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return Err(format!(
            "bad range [{body}] in {pattern:?}: expected [start:end] or [start:end:step]"
        ));
    }
    let step: usize = match parts.get(2) {
        Some(s) => s
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("bad step in [{body}]"))?,
        None => 1,
    };
    let (a, b) = (parts[0], parts[1]);
    let items: Vec<String> = if let (Ok(x), Ok(y)) = (a.parse::<u64>(), b.parse::<u64>()) {
        if x > y {
            return Err(format!("range [{body}] in {pattern:?} runs backwards"));
        }
        if y - x > 100_000 {
            return Err(format!("range [{body}] in {pattern:?} is too large"));
        }
        let width = if a.len() > 1 && a.starts_with('0') {
            a.len()
        } else {
            0
        };
        (x..=y)
            .step_by(step)
            .map(|n| format!("{n:0width$}"))
            .collect()
    } else if a.len() == 1
        && b.len() == 1
        && a.chars().all(|c| c.is_ascii_alphabetic())
        && b.chars().all(|c| c.is_ascii_alphabetic())
    {
        let (x, y) = (a.as_bytes()[0], b.as_bytes()[0]);
        if x > y {
            return Err(format!("range [{body}] in {pattern:?} runs backwards"));
        }
        (x..=y)
            .step_by(step)
            .map(|c| (c as char).to_string())
            .collect()
    } else {
        return Err(format!(
            "bad range [{body}] in {pattern:?}: use numbers or single letters"
        ));
    };
    let mut out = Vec::new();
    for rest in expand_range(tail)? {
        for i in &items {
            out.push(format!("{head}{i}{rest}"));
        }
    }
    out.sort();
    Ok(out)
}

/// Splits a host line as Python's `shlex.split(line, comments=True)`: quotes group words,
/// a backslash escapes (outside single quotes), and an unquoted `#` ends the line.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => match chars.next() {
                Some(n @ ('"' | '\\' | '$' | '`')) => cur.push(n),
                Some(n) => {
                    cur.push('\\');
                    cur.push(n);
                }
                None => return Err("unfinished escape at the end of the line".into()),
            },
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, '\\') => match chars.next() {
                Some(n) => cur.push(n),
                None => return Err("unfinished escape at the end of the line".into()),
            },
            (None, '#') => break,
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if quote.is_some() {
        return Err("unclosed quote".into());
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// A value as Ansible's `ast.literal_eval` leaves it for our purposes: a string literal in
/// matching quotes loses them; anything else is kept as written (numbers compare as text).
pub fn literal_value(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\''] {
        if v.len() >= 2
            && v.starts_with(q)
            && v.ends_with(q)
            && !v[1..v.len() - 1].contains(q)
            && !v[1..v.len() - 1].contains('\\')
        {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

/// The text of an INI line before a trailing `# comment` (section headers, children lines).
pub fn before_comment(line: &str) -> &str {
    line.split_once('#').map_or(line, |(a, _)| a).trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            expand_range("web[01:03].x").unwrap(),
            vec!["web01.x", "web02.x", "web03.x"]
        );
        assert_eq!(
            expand_range("db-[a:c]").unwrap(),
            vec!["db-a", "db-b", "db-c"]
        );
        assert_eq!(expand_range("n[1:5:2]").unwrap(), vec!["n1", "n3", "n5"]);
        assert_eq!(expand_range("r[1:2]c[a:b]").unwrap().len(), 4);
        assert!(expand_range("w[3:1]").is_err());
        assert!(expand_range("w[1:").is_err());
    }

    #[test]
    fn addresses() {
        let p = |s: &str| parse_address(s).unwrap();
        assert_eq!(
            p("badwolf.example.com:5309"),
            ("badwolf.example.com".into(), Some(5309))
        );
        assert_eq!(p("[2001:db8::7]:2201"), ("2001:db8::7".into(), Some(2201)));
        assert_eq!(p("2001:db8::8"), ("2001:db8::8".into(), None));
        assert_eq!(p("web[01:03].x:2222"), ("web[01:03].x".into(), Some(2222)));
        assert_eq!(p("web[01:03].x"), ("web[01:03].x".into(), None));
        assert_eq!(p("10.0.0.1:22"), ("10.0.0.1".into(), Some(22)));
        assert!(parse_address("h:70000").is_err());
    }

    #[test]
    fn words() {
        assert_eq!(
            split_words(r#"h a=1 b="x y""#).unwrap(),
            vec!["h", "a=1", "b=x y"]
        );
        assert_eq!(split_words("h a=b#c d=e # end").unwrap(), vec!["h", "a=b"]);
        assert_eq!(split_words(r"h a=x\ y").unwrap(), vec!["h", "a=x y"]);
        assert!(split_words("h a=\"x").is_err());
        assert_eq!(literal_value(" \"atl user\" "), "atl user");
        assert_eq!(literal_value("/k # c"), "/k # c");
    }
}
