//! `sambung read-pdf`: the text of one PDF, read in a process of its own. PDF readers
//! decompress whole streams into memory and may loop on a crafted file (a few kilobytes of
//! deflate can claim gigabytes), so the server never reads a PDF's text itself: it starts
//! this command for each upload, with the file as standard input and nothing of its
//! environment, and kills it when it runs over its time. The limits set here end the process
//! that runs over them, never the server.

use std::io::{Read as _, Write as _};
use std::process::ExitCode;

use nix::sys::resource::{setrlimit, Resource};

/// The address space this process may use: a real 20 MB PDF reads in a few hundred MB.
const MEMORY_BYTES: u64 = 1 << 30;
/// Processor seconds before the kernel ends the process (the server gives it less).
const CPU_SECONDS: u64 = 30;
/// The most of standard input read (the largest file an admin may allow, and one byte).
const INPUT_BYTES: u64 = sambung_db::instance::MAX_FILE_BYTES as u64 + 1;

/// Read the PDF on standard input and print its text (nothing when it has none). Exits 2 when
/// the limits cannot be set, 1 when the input cannot be read or is larger than any file.
pub fn run() -> ExitCode {
    let limits = [
        (Resource::RLIMIT_AS, MEMORY_BYTES),
        (Resource::RLIMIT_CPU, CPU_SECONDS),
        // It writes to its standard output, never a file.
        (Resource::RLIMIT_FSIZE, 0),
        (Resource::RLIMIT_CORE, 0),
    ];
    for (resource, limit) in limits {
        if let Err(error) = setrlimit(resource, limit, limit) {
            eprintln!("error: cannot limit {resource:?}: {error}");
            return ExitCode::from(2);
        }
    }
    let mut pdf = Vec::new();
    match std::io::stdin().take(INPUT_BYTES).read_to_end(&mut pdf) {
        Ok(read) if (read as u64) < INPUT_BYTES => {}
        Ok(_) => {
            eprintln!("error: larger than any file the server keeps");
            return ExitCode::FAILURE;
        }
        Err(error) => {
            eprintln!("error: cannot read the PDF: {error}");
            return ExitCode::FAILURE;
        }
    }
    let text = sambung_files::pdf_text(&pdf).unwrap_or_default();
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}
