//! `completions SHELL` and `man [--out DIR]`: generated from the clap definitions at run time,
//! so they never drift from the CLI.

use super::out::{errln, out};
use super::{Cli, exit};
use clap::{Args, CommandFactory, ValueEnum};
use color_eyre::eyre::{Result, WrapErr};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to print a completion script for.
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write provision-tui.1 and one page per subcommand (provision-tui-server.1, ...) into
    /// this directory instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The completion script for `shell` (the text the command prints).
pub fn completion_script(shell: Shell) -> Result<String> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    let name = "provision-tui";
    match shell {
        Shell::Bash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, name, &mut buf)
        }
        Shell::Zsh => clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, name, &mut buf),
        Shell::Fish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, name, &mut buf)
        }
    }
    String::from_utf8(buf).wrap_err("the generated completion script is not UTF-8")
}

pub fn completions(a: CompletionsArgs) -> Result<i32> {
    out!("{}", completion_script(a.shell)?);
    Ok(exit::OK)
}

pub fn man(a: ManArgs) -> Result<i32> {
    let cmd = Cli::command();
    match a.out {
        None => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut buf)?;
            out!(
                "{}",
                String::from_utf8(buf).wrap_err("the generated man page is not UTF-8")?
            );
        }
        Some(dir) => {
            let n = write_pages(cmd, &dir)?;
            errln!("wrote {n} man pages to {}", dir.display());
        }
    }
    Ok(exit::OK)
}

/// Writes the main page and one per visible subcommand (clap_mangen names them
/// `provision-tui-server-add.1`, ...); returns how many.
fn write_pages(cmd: clap::Command, dir: &Path) -> Result<usize> {
    let hint = || {
        format!(
            "cannot write man pages to {}: check the path and its permissions",
            dir.display()
        )
    };
    std::fs::create_dir_all(dir).wrap_err_with(hint)?;
    clap_mangen::generate_to(cmd, dir).wrap_err_with(hint)?;
    let pages = std::fs::read_dir(dir)
        .wrap_err_with(hint)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".1"))
        .count();
    Ok(pages)
}
