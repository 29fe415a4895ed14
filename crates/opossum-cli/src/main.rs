//! The `opossum` command: see the `opossum_cli` crate documentation, or run `opossum --help`.

fn main() -> std::process::ExitCode {
    opossum_cli::Tool::new().run()
}
