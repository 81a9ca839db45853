//! The `sambung` binary: the command line is the library's (`sambung::main`).

fn main() -> std::process::ExitCode {
    sambung::main()
}
