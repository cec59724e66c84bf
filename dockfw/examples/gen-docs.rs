//! Generates dockfw's man pages and shell completions from the clap
//! definitions, so they cannot drift from the command line.
//!
//! `cargo xtask docs` runs `cargo run -p dockfw --example gen-docs -- OUT_DIR`
//! and writes:
//!
//! - `OUT_DIR/man/dockfw.1` and one page per subcommand (`dockfw-run.1`,
//!   `dockfw-trace.1`, ...), for `man -l` or `/usr/share/man/man1`;
//! - `OUT_DIR/completions/`: `dockfw.bash`, `_dockfw` (zsh), `dockfw.fish`,
//!   `dockfw.elv` (elvish) and `_dockfw.ps1` (PowerShell).

use std::{
    fs,
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{CommandFactory as _, ValueEnum as _};
use clap_complete::Shell;
use dockfw::cli::Cli;

fn main() -> ExitCode {
    let Some(out_dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: gen-docs OUT_DIR");
        return ExitCode::FAILURE;
    };
    match generate(&out_dir) {
        Ok(count) => {
            println!("wrote {count} files under {}", out_dir.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("gen-docs: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Writes every page and completion script; returns how many files.
fn generate(out_dir: &Path) -> std::io::Result<usize> {
    let man_dir = out_dir.join("man");
    let completion_dir = out_dir.join("completions");
    fs::create_dir_all(&man_dir)?;
    fs::create_dir_all(&completion_dir)?;

    let mut command = Cli::command();
    command.build();
    let mut written = 0;
    let mut pages = vec![(String::from("dockfw"), command.clone())];
    for sub in command
        .get_subcommands()
        .filter(|sub| sub.get_name() != "help")
    {
        // A subcommand's page is named like git's: dockfw-run(1).
        let name = format!("dockfw-{}", sub.get_name());
        let page = sub
            .clone()
            .display_name(name.clone())
            .bin_name(format!("dockfw {}", sub.get_name()));
        pages.push((name, page));
    }
    for (name, page) in pages {
        let mut roff = Vec::new();
        clap_mangen::Man::new(page).render(&mut roff)?;
        fs::write(man_dir.join(format!("{name}.1")), roff)?;
        written += 1;
    }
    for shell in Shell::value_variants() {
        let path = clap_complete::generate_to(*shell, &mut command, "dockfw", &completion_dir)?;
        if !path.exists() {
            return Err(std::io::Error::other(format!(
                "{shell} completions were not written to {}",
                path.display()
            )));
        }
        written += 1;
    }
    Ok(written)
}
