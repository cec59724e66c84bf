//! The `dockfw` binary, built inside the test package so integration tests
//! can run it as `env!("CARGO_BIN_EXE_dockfw")`.

fn main() -> std::process::ExitCode {
    dockfw::entry::main()
}
