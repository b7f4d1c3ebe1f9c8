//! Shell completions and man pages generated from a clap command definition, for both of the
//! workspace's binaries (`pki-tool completions|man`, `smds completions|man`), so that what the
//! shell offers and what `man` says are what `--help` says. Touches only the output it is given.

use std::path::{Path, PathBuf};

/// Writes the completion script for `shell` to standard output.
pub fn print_completions(shell: clap_complete::Shell, mut command: clap::Command) {
    let name = command.get_name().to_string();
    clap_complete::generate(shell, &mut command, name, &mut std::io::stdout());
}

/// Writes `NAME.1` and one `NAME-SUB[-SUB].1` per subcommand into `dir` (created if needed) and
/// returns the files written.
pub fn write_man_pages(command: clap::Command, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let name = command.get_name().to_string();
    write_page(command, &name, dir, &mut written)?;
    Ok(written)
}

fn write_page(
    command: clap::Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    let command = command.name(name.to_string());
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page)?;
    written.push(path);
    for sub in command.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        write_page(
            sub.clone(),
            &format!("{name}-{}", sub.get_name()),
            dir,
            written,
        )?;
    }
    Ok(())
}
