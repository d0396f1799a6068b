//! A shell on the guest's serial console, driven with expectrl (sync API) over QEMU's serial
//! chardev unix socket. Blocking: run it in `tokio::task::spawn_blocking`.

use std::{
    io::{self, Read, Write},
    os::unix::net::UnixStream,
    path::Path,
    time::{Duration, Instant},
};

use expectrl::{process::NonBlocking, Expect, Session};

use crate::text::{strip_ansi, Marked, Markers};

/// How long a "non-blocking" read waits for data before reporting `WouldBlock`. expectrl's
/// expect loop polls without sleeping; waiting here keeps it from spinning a core that the
/// guest (TCG) needs.
const POLL: Duration = Duration::from_millis(20);

/// The serial socket as an expectrl stream: `NonBlocking` means "read waits at most `POLL`".
#[derive(Debug)]
pub struct SerialStream {
    socket: UnixStream,
}

impl SerialStream {
    /// Connects to QEMU's serial chardev socket.
    pub fn connect(path: &Path) -> io::Result<SerialStream> {
        let socket = UnixStream::connect(path)?;
        socket.set_write_timeout(Some(Duration::from_secs(10)))?;
        Ok(SerialStream { socket })
    }
}

impl Read for SerialStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.socket.read(buf) {
            // A read timeout surfaces as WouldBlock (EAGAIN) or TimedOut depending on platform.
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                Err(io::Error::from(io::ErrorKind::WouldBlock))
            }
            other => other,
        }
    }
}

impl Write for SerialStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.socket.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.socket.flush()
    }
}

impl NonBlocking for SerialStream {
    fn set_blocking(&mut self, on: bool) -> io::Result<()> {
        self.socket
            .set_read_timeout(if on { None } else { Some(POLL) })
    }
}

/// What went wrong on the console.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// Connecting to or talking over the socket failed.
    #[error("serial console: {0}")]
    Io(#[from] io::Error),
    /// expectrl reported an error other than a timeout.
    #[error("serial console: {0}")]
    Expect(String),
    /// No shell prompt appeared in time.
    #[error("no shell on the serial console within {0:?} (last text: {1:?})")]
    NoShell(Duration, String),
    /// A command's end marker did not arrive in time.
    #[error("`{0}` did not finish within {1:?}")]
    CommandTimeout(String, Duration),
}

/// How the shell was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Login {
    /// A prompt was there already (getty autologin).
    Autologin,
    /// The getty asked for a login name; `root` was typed (and an empty password if asked).
    Root,
}

/// A shell session on the serial console.
pub struct Console {
    session: Session<(), SerialStream>,
    next_id: u32,
    /// Everything seen on the console (raw), for failure messages.
    pub transcript: String,
}

impl Console {
    /// Connects to the serial socket.
    pub fn connect(path: &Path) -> Result<Console, ConsoleError> {
        let session = Session::new((), SerialStream::connect(path)?)?;
        Ok(Console {
            session,
            next_id: 1,
            transcript: String::new(),
        })
    }

    /// Waits up to `within` for the regex `pattern` in the raw console bytes; returns the text
    /// read up to the end of the match, or `None` on timeout.
    fn wait_for(
        &mut self,
        pattern: &str,
        within: Duration,
    ) -> Result<Option<String>, ConsoleError> {
        self.session.set_expect_timeout(Some(within));
        match self.session.expect(expectrl::Regex(pattern)) {
            Ok(found) => {
                let text = String::from_utf8_lossy(found.as_bytes()).into_owned();
                self.transcript.push_str(&text);
                Ok(Some(text))
            }
            Err(expectrl::Error::ExpectTimeout) => Ok(None),
            Err(expectrl::Error::IO(e)) => Err(ConsoleError::Io(e)),
            Err(e) => Err(ConsoleError::Expect(e.to_string())),
        }
    }

    fn send_line(&mut self, line: &str) -> Result<(), ConsoleError> {
        self.session
            .send_line(line)
            .map_err(|e| ConsoleError::Expect(e.to_string()))
    }

    /// Gets a shell: an autologin prompt, or logs in as root (empty password if asked).
    /// Proves the shell with a marker round trip, then makes the output plain (no pager, no
    /// colours, no echo, wide lines).
    pub fn shell(&mut self, within: Duration) -> Result<Login, ConsoleError> {
        // A prompt ends in `#` or `$`, maybe followed by colour resets (NixOS's prompt is
        // coloured); a getty asks `login:` or `Password:`. All at the end of what was read.
        let any = r"(?i)([#$](?:\x1b\[[0-9;?]*[A-Za-z])*|login:|password:)\s*\z";
        let started = Instant::now();
        let mut login = Login::Autologin;
        while started.elapsed() < within {
            self.send_line("")?;
            let Some(text) = self.wait_for(any, Duration::from_secs(5))? else {
                continue;
            };
            let clean = strip_ansi(&text).trim_end().to_lowercase();
            if clean.ends_with("login:") || clean.ends_with("password:") {
                let asks_password = clean.ends_with("password:");
                self.send_line(if asks_password { "" } else { "root" })?;
                login = Login::Root;
                continue;
            }
            if self.probe()? {
                self.run(
                    "export TERM=dumb PAGER=cat SYSTEMD_PAGER=cat SYSTEMD_COLORS=0; stty -echo cols 400 2>/dev/null; true",
                    Duration::from_secs(10),
                )?;
                return Ok(login);
            }
        }
        Err(ConsoleError::NoShell(
            within,
            crate::text::tail_lines(&self.transcript, 5),
        ))
    }

    /// Whether a shell answers an `echo` within a few seconds.
    fn probe(&mut self) -> Result<bool, ConsoleError> {
        match self.run("true", Duration::from_secs(5)) {
            Ok(_) => Ok(true),
            Err(ConsoleError::CommandTimeout(..)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Runs one shell command, framed by unique markers; returns its exit status and output.
    pub fn run(&mut self, command: &str, within: Duration) -> Result<Marked, ConsoleError> {
        let markers = Markers::new(self.next_id);
        self.next_id += 1;
        self.send_line(&markers.wrap(command))?;
        let Some(text) = self.wait_for(&markers.end_pattern(), within)? else {
            return Err(ConsoleError::CommandTimeout(command.to_owned(), within));
        };
        markers
            .parse(&text)
            .ok_or_else(|| ConsoleError::CommandTimeout(command.to_owned(), within))
    }
}
