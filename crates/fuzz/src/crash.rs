//! Where crashing inputs go: `target/fuzz-crashes/<target>/<hash>`, and `in-flight`
//! there, the input being run (written, after a marker byte, before each execution and
//! emptied after it), so that an execution the process cannot survive (an abort: memory
//! past the allocator's cap, a stack overflow) still leaves its input behind; the next
//! run of that target saves it as a crash.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The in-flight input's file name.
const IN_FLIGHT: &str = "in-flight";
/// What the in-flight file starts with while an input runs (an empty input included).
const MARKER: u8 = b'>';

/// The most bytes of an input shown in a report (the file has them all).
const SHOWN: usize = 512;

/// An input a previous run died on, and where it is now saved.
pub(crate) type DiedOn = Option<(Vec<u8>, PathBuf)>;

/// One target's crash folder.
#[derive(Debug)]
pub(crate) struct CrashDir {
    dir: PathBuf,
    in_flight: File,
    buffer: Vec<u8>,
}

impl CrashDir {
    /// Opens `root/target`, and gives the input a previous run died on, if any, saved.
    pub(crate) fn open(root: &Path, target: &str) -> io::Result<(Self, DiedOn)> {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(IN_FLIGHT);
        let died_on = match std::fs::read(&path) {
            Ok(file) => match file.split_first() {
                Some((&MARKER, input)) => Some((input.to_vec(), save_in(&dir, input)?)),
                _ => None,
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let in_flight = File::create(&path)?;
        let dir = Self {
            dir,
            in_flight,
            buffer: Vec::new(),
        };
        Ok((dir, died_on))
    }

    /// Notes `input` as the one about to run.
    pub(crate) fn in_flight(&mut self, input: &[u8]) -> io::Result<()> {
        self.buffer.clear();
        self.buffer.push(MARKER);
        self.buffer.extend_from_slice(input);
        self.in_flight.write_all_at(&self.buffer, 0)?;
        self.in_flight.set_len(self.buffer.len() as u64)
    }

    /// Notes that the input ran to its end.
    pub(crate) fn landed(&self) -> io::Result<()> {
        self.in_flight.set_len(0)
    }

    /// Saves a crashing input, named by its hash.
    pub(crate) fn save(&self, input: &[u8]) -> io::Result<PathBuf> {
        save_in(&self.dir, input)
    }

    /// Saves an input under `name`.
    pub(crate) fn save_as(&self, name: &str, input: &[u8]) -> io::Result<PathBuf> {
        let path = self.dir.join(name);
        std::fs::write(&path, input)?;
        Ok(path)
    }

    /// Ends the run: nothing is in flight.
    pub(crate) fn close(self) -> io::Result<()> {
        drop(self.in_flight);
        std::fs::remove_file(self.dir.join(IN_FLIGHT))
    }
}

fn save_in(dir: &Path, input: &[u8]) -> io::Result<PathBuf> {
    let path = dir.join(&glassbox_pack::sha256_hex(input)[..16]);
    std::fs::write(&path, input)?;
    Ok(path)
}

/// An input as a report shows it: escaped text for text targets, hex otherwise; at most
/// [`SHOWN`] bytes of it.
pub(crate) fn show(input: &[u8], text: bool) -> String {
    let head = &input[..input.len().min(SHOWN)];
    let more = if input.len() > SHOWN { " …" } else { "" };
    if text {
        format!("{:?}{more}", String::from_utf8_lossy(head))
    } else {
        let hex: Vec<String> = head.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}{more}", hex.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::show;

    #[test]
    fn inputs_show_escaped_or_in_hex() {
        assert_eq!(show(b"a\"\n", true), r#""a\"\n""#);
        assert_eq!(show(&[0, 255], false), "00 ff");
        assert!(show(&[7; 600], false).ends_with(" …"));
    }
}
