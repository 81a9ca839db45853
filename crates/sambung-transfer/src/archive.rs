//! A zip as services hand it out (ChatGPT's and Claude's exports, our account's), opened
//! within limits: every name must stay inside the archive, the entries are counted, and no
//! entry yields more than its limit whatever its header claims (a zip bomb stops there).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use zip::ZipArchive;

/// The entries that hold conversations, by the service that names them so.
const CONVERSATION_ENTRIES: [&str; 2] = ["chats.json", "conversations.json"];

/// The entry of our account's zip that holds prompts.
pub const PROMPTS_ENTRY: &str = "prompts.json";

/// Most entries an archive may have.
pub const MAX_ENTRIES: usize = 50_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArchiveError {
    #[error("the file is not a zip archive")]
    NotZip,
    #[error("the archive names a file outside itself ({0}): refused")]
    UnsafeName(String),
    #[error("the archive holds more than {MAX_ENTRIES} files")]
    TooManyEntries,
    #[error(
        "the archive holds no conversations.json (nor conversations-000.json, nor our chats.json)"
    )]
    NoConversations,
    #[error("{name} in the archive unpacks to more than {limit_mib} MiB")]
    TooLarge { name: String, limit_mib: u64 },
    #[error("the archive is damaged: {0}")]
    Damaged(String),
}

pub struct Archive {
    zip: ZipArchive<File>,
}

impl Archive {
    /// The archive at `path`, its names checked.
    pub fn open(path: &Path) -> Result<Archive, ArchiveError> {
        let mut file = File::open(path).map_err(|e| ArchiveError::Damaged(e.to_string()))?;
        // Counted before the zip crate reads the whole directory into memory.
        if declared_entries(&mut file).is_some_and(|n| n > MAX_ENTRIES as u64) {
            return Err(ArchiveError::TooManyEntries);
        }
        let mut zip = ZipArchive::new(file).map_err(|_| ArchiveError::NotZip)?;
        if zip.len() > MAX_ENTRIES {
            return Err(ArchiveError::TooManyEntries);
        }
        for i in 0..zip.len() {
            let entry = zip
                .by_index_raw(i)
                .map_err(|e| ArchiveError::Damaged(e.to_string()))?;
            let name = entry.name();
            if entry.enclosed_name().is_none() || name.contains('\\') || name.starts_with('/') {
                return Err(ArchiveError::UnsafeName(name.chars().take(200).collect()));
            }
        }
        Ok(Archive { zip })
    }

    /// The entries holding the conversations, in order: ours (`chats.json`) or the services'
    /// (`conversations.json`), at the top or in the one folder the zip was made of; else the
    /// pieces ChatGPT splits a large export into (`conversations-000.json`, `-001`, ...).
    pub fn conversations_entries(&self) -> Result<Vec<String>, ArchiveError> {
        if let Some(entry) = self.top_entry(&CONVERSATION_ENTRIES) {
            return Ok(vec![entry]);
        }
        let mut pieces: Vec<(&str, u64, &str)> = self
            .zip
            .file_names()
            .filter(|n| n.matches('/').count() <= 1)
            .filter_map(|n| {
                let (folder, file) = n.rsplit_once('/').unwrap_or(("", n));
                let number = file
                    .strip_prefix("conversations-")?
                    .strip_suffix(".json")
                    .filter(|d| {
                        !d.is_empty() && d.len() <= 9 && d.bytes().all(|b| b.is_ascii_digit())
                    })?
                    .parse()
                    .ok()?;
                Some((folder, number, n))
            })
            .collect();
        // The one folder nearest the top holds them, as it holds conversations.json.
        let Some(folder) = pieces.iter().map(|p| p.0).min_by_key(|f| f.len()) else {
            return Err(ArchiveError::NoConversations);
        };
        pieces.retain(|p| p.0 == folder);
        pieces.sort_unstable_by_key(|p| p.1);
        Ok(pieces.into_iter().map(|p| p.2.to_owned()).collect())
    }

    /// The first of `names` the archive holds at its top or one folder down.
    pub fn top_entry(&self, names: &[&str]) -> Option<String> {
        names.iter().find_map(|wanted| {
            self.zip
                .file_names()
                .filter(|n| n.rsplit('/').next() == Some(*wanted) && n.matches('/').count() <= 1)
                .min_by_key(|n| n.len())
                .map(str::to_owned)
        })
    }

    /// The entry a ChatGPT image pointer (`file-abc123`, `file_00000000…`) names: the file
    /// whose name starts with it, in any folder.
    pub fn find_by_prefix(&self, prefix: &str) -> Option<String> {
        if prefix.len() < 6 || prefix.contains('/') {
            return None;
        }
        self.zip
            .file_names()
            .filter(|n| !n.ends_with('/'))
            .find(|n| n.rsplit('/').next().is_some_and(|f| f.starts_with(prefix)))
            .map(str::to_owned)
    }

    /// Whether the archive holds `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.zip.index_for_name(name).is_some()
    }

    /// What `name` unpacks to, as the archive's directory says (a reader still stops at its
    /// limit whatever this says).
    pub fn size(&mut self, name: &str) -> Result<u64, ArchiveError> {
        self.zip
            .by_name(name)
            .map(|entry| entry.size())
            .map_err(|e| ArchiveError::Damaged(e.to_string()))
    }

    /// A reader of `name` that fails past `limit` bytes.
    pub fn reader(&mut self, name: &str, limit: u64) -> Result<impl Read + '_, ArchiveError> {
        let entry = self
            .zip
            .by_name(name)
            .map_err(|e| ArchiveError::Damaged(e.to_string()))?;
        if entry.size() > limit {
            return Err(too_large(name, limit));
        }
        Ok(Capped {
            inner: entry,
            left: limit,
        })
    }

    /// The bytes of `name`, at most `limit` of them.
    pub fn read(&mut self, name: &str, limit: u64) -> Result<Vec<u8>, ArchiveError> {
        let mut bytes = Vec::new();
        self.reader(name, limit)?
            .read_to_end(&mut bytes)
            .map_err(|e| match e.kind() {
                io::ErrorKind::FileTooLarge => too_large(name, limit),
                _ => ArchiveError::Damaged(e.to_string()),
            })?;
        Ok(bytes)
    }
}

fn too_large(name: &str, limit: u64) -> ArchiveError {
    ArchiveError::TooLarge {
        name: name.chars().take(200).collect(),
        limit_mib: limit >> 20,
    }
}

/// What an entry unpacks to, stopped past its limit (headers may lie).
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::FileTooLarge,
                "an entry unpacks past its limit",
            )
        })?;
        Ok(n)
    }
}

/// How many entries the end of a zip's central directory says it holds (its zip64 record's
/// count when the classic one is saturated); none when there is no such record to read.
fn declared_entries(file: &mut File) -> Option<u64> {
    use std::io::{Seek, SeekFrom};
    let size = file.seek(SeekFrom::End(0)).ok()?;
    let tail_len = size.min(22 + 65_535);
    file.seek(SeekFrom::Start(size - tail_len)).ok()?;
    let mut tail = vec![0; tail_len as usize];
    file.read_exact(&mut tail).ok()?;
    let at = (0..tail.len().checked_sub(21)?)
        .rev()
        .find(|&i| tail[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])?;
    let classic = u16::from_le_bytes([tail[at + 10], tail[at + 11]]);
    if classic != u16::MAX {
        return Some(u64::from(classic));
    }
    // The zip64 locator sits just before the record: it says where the zip64 record is.
    let locator = at.checked_sub(20)?;
    if tail[locator..locator + 4] != [0x50, 0x4b, 0x06, 0x07] {
        return Some(u64::from(classic));
    }
    let offset = u64::from_le_bytes(tail[locator + 8..locator + 16].try_into().ok()?);
    file.seek(SeekFrom::Start(offset)).ok()?;
    let mut record = [0u8; 40];
    file.read_exact(&mut record).ok()?;
    (record[..4] == [0x50, 0x4b, 0x06, 0x06])
        .then(|| u64::from_le_bytes(record[32..40].try_into().unwrap_or_default()))
}

/// Whether `bytes` start as a zip does.
pub fn is_zip(start: &[u8]) -> bool {
    start.starts_with(b"PK\x03\x04") || start.starts_with(b"PK\x05\x06")
}
