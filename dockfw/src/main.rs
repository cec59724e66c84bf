//! The `dockfw` binary.

fn main() -> std::process::ExitCode {
    dockfw::entry::main()
}
