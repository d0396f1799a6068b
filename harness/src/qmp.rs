//! A small QMP client: JSON lines over QEMU's unix socket, typed commands from the qapi crate
//! (`qapi::qmp::*`), events as raw JSON so that an event the pinned schema does not know can
//! never break the stream. Every line in either direction is logged to `qmp.log` with its time.
//!
//! Hand-written rather than qapi's own tokio client (whose feature the workspace does not enable):
//! that client's event enum is closed, so an event of a newer QEMU could surface as an error, and
//! its `spawn_tokio()` drops events.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::HarnessError;

/// How long a command may take to answer.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// A QMP event, by name, with its data.
#[derive(Debug, Clone, PartialEq)]
pub struct QmpEvent {
    /// The event name (`SHUTDOWN`, `GUEST_PANICKED`, ...).
    pub name: String,
    /// Its `data` member (`null` when absent).
    pub data: Value,
}

type Log = Arc<Mutex<std::fs::File>>;

/// A connected, negotiated QMP session.
#[derive(Debug)]
pub struct Qmp {
    writer: OwnedWriteHalf,
    responses: mpsc::UnboundedReceiver<Value>,
    log: Log,
    started: Instant,
    reader: JoinHandle<()>,
}

fn log_line(log: &Log, started: Instant, dir: &str, line: &str) {
    if let Ok(mut f) = log.lock() {
        let _ = writeln!(
            f,
            "{:>9.3} {dir} {}",
            started.elapsed().as_secs_f64(),
            line.trim_end()
        );
    }
}

/// Why [`Qmp::connect_when_ready`] gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectFailure {
    /// QEMU ended first; how (its exit, or the caller's reading of it).
    Exited(String),
    /// The socket did not answer in time.
    Timeout,
}

impl Qmp {
    /// THE wait for a starting QEMU's QMP: tries [`Qmp::connect`] every 20 ms until it succeeds,
    /// `exited()` reports that QEMU ended (checked before every try), or `within` has passed
    /// since `started`.
    pub async fn connect_when_ready(
        socket: &Path,
        log_path: &Path,
        started: Instant,
        events: mpsc::UnboundedSender<QmpEvent>,
        within: Duration,
        mut exited: impl FnMut() -> Option<String>,
    ) -> Result<Qmp, ConnectFailure> {
        loop {
            if let Some(how) = exited() {
                return Err(ConnectFailure::Exited(how));
            }
            // Before QEMU created the socket a try can only fail.
            if socket.exists() {
                if let Ok(q) = Qmp::connect(socket, log_path, started, events.clone()).await {
                    return Ok(q);
                }
            }
            if started.elapsed() > within {
                return Err(ConnectFailure::Timeout);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Connects to `socket`, reads the greeting and negotiates capabilities. Events go to
    /// `events`; all traffic is appended to `log_path`; times count from `started`.
    pub async fn connect(
        socket: &Path,
        log_path: &Path,
        started: Instant,
        events: mpsc::UnboundedSender<QmpEvent>,
    ) -> Result<Qmp, HarnessError> {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|e| HarnessError::io(format!("connect to QMP at {}", socket.display()), e))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(|e| HarnessError::io(format!("open {}", log_path.display()), e))?;
        let log: Log = Arc::new(Mutex::new(file));
        let (read, writer) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let greeting = tokio::time::timeout(COMMAND_TIMEOUT, lines.next_line())
            .await
            .map_err(|_| qmp_error("greeting", "no greeting from QEMU"))?
            .map_err(|e| qmp_error("greeting", e))?
            .ok_or_else(|| qmp_error("greeting", "QEMU closed the socket"))?;
        log_line(&log, started, "<-", &greeting);
        let (tx, responses) = mpsc::unbounded_channel();
        let reader_log = log.clone();
        let reader = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                log_line(&reader_log, started, "<-", &line);
                let Ok(value) = serde_json::from_str::<Value>(&line) else {
                    continue; // logged; not JSON we understand
                };
                if let Some(name) = value.get("event").and_then(Value::as_str) {
                    let data = value.get("data").cloned().unwrap_or(Value::Null);
                    let _ = events.send(QmpEvent {
                        name: name.to_string(),
                        data,
                    });
                } else if value.get("return").is_some() || value.get("error").is_some() {
                    let _ = tx.send(value);
                }
            }
        });
        let mut qmp = Qmp {
            writer,
            responses,
            log,
            started,
            reader,
        };
        qmp.execute(&qapi::qmp::qmp_capabilities { enable: None })
            .await?;
        Ok(qmp)
    }

    /// Runs one command and decodes its typed answer.
    pub async fn execute<C: qapi::Command>(&mut self, command: &C) -> Result<C::Ok, HarnessError> {
        let request = serde_json::json!({ "execute": C::NAME, "arguments": command });
        let mut line = request.to_string();
        log_line(&self.log, self.started, "->", &line);
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .await
            .map_err(|e| qmp_error(C::NAME, e))?;
        let answer = tokio::time::timeout(COMMAND_TIMEOUT, self.responses.recv())
            .await
            .map_err(|_| qmp_error(C::NAME, "no answer within 10 s"))?
            .ok_or_else(|| qmp_error(C::NAME, "QEMU closed the QMP socket"))?;
        if let Some(err) = answer.get("error") {
            let desc = err.get("desc").and_then(Value::as_str).unwrap_or("error");
            return Err(qmp_error(C::NAME, desc));
        }
        serde_json::from_value(answer["return"].clone()).map_err(|e| qmp_error(C::NAME, e))
    }

    /// QEMU's version as (major, minor, micro).
    pub async fn version(&mut self) -> Result<(i64, i64, i64), HarnessError> {
        let v = self.execute(&qapi::qmp::query_version {}).await?;
        Ok((v.qemu.major, v.qemu.minor, v.qemu.micro))
    }

    /// Whether the guest CPUs run, and the run state's name.
    pub async fn status(&mut self) -> Result<(bool, String), HarnessError> {
        let s = self.execute(&qapi::qmp::query_status {}).await?;
        let state = serde_json::to_value(s.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        Ok((s.running, state))
    }

    /// Saves the display to `path`: PNG with QEMU >= 7.1, else PPM (the path's extension is
    /// changed to match). Returns the file written.
    pub async fn screendump(&mut self, path: &Path) -> Result<std::path::PathBuf, HarnessError> {
        let png = self.version().await? >= (7, 1, 0);
        let file = path.with_extension(if png { "png" } else { "ppm" });
        self.execute(&qapi::qmp::screendump {
            device: None,
            head: None,
            format: png.then_some(qapi::qmp::ImageFormat::png),
            filename: file.to_string_lossy().into_owned(),
        })
        .await?;
        Ok(file)
    }
}

impl Drop for Qmp {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn qmp_error(command: &str, detail: impl std::fmt::Display) -> HarnessError {
    HarnessError::Qmp {
        command: command.to_string(),
        detail: detail.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::UnixListener;

    /// A fake QEMU: greeting, then answers every command, sending an event the schema does not
    /// know (and a garbage line) before the answer to query-status.
    async fn fake_qemu(listener: UnixListener) {
        let (sock, _) = listener.accept().await.unwrap();
        let (r, mut w) = sock.into_split();
        let mut lines = BufReader::new(r).lines();
        w.write_all(b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"\"}, \"capabilities\": []}}\n")
            .await
            .unwrap();
        while let Ok(Some(line)) = lines.next_line().await {
            let v: Value = serde_json::from_str(&line).unwrap();
            let answer = match v["execute"].as_str().unwrap() {
                "query-status" => {
                    w.write_all(b"{\"event\": \"FUTURE_EVENT_QEMU_99\", \"data\": {\"x\": 1}, \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\nnot json\n")
                        .await
                        .unwrap();
                    "{\"return\": {\"running\": true, \"status\": \"running\"}}"
                }
                "system_powerdown" => {
                    "{\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}}"
                }
                _ => "{\"return\": {}}",
            };
            w.write_all(format!("{answer}\n").as_bytes()).await.unwrap();
        }
    }

    #[tokio::test]
    async fn typed_commands_unknown_events_errors_and_log() {
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("qmp.sock");
        let server = tokio::spawn(fake_qemu(UnixListener::bind(&sock).unwrap()));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let log = d.path().join("qmp.log");
        let mut qmp = Qmp::connect(&sock, &log, Instant::now(), tx).await.unwrap();
        assert_eq!(qmp.status().await.unwrap(), (true, "running".to_string()));
        let ev = rx.recv().await.unwrap();
        assert_eq!(ev.name, "FUTURE_EVENT_QEMU_99");
        assert_eq!(ev.data["x"], 1);
        let err = qmp
            .execute(&qapi::qmp::system_powerdown {})
            .await
            .unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        // The session still works after the unknown event and the error.
        assert!(qmp.status().await.unwrap().0);
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains("-> {\"arguments\":{},\"execute\":\"qmp_capabilities\"}"),
            "{text}"
        );
        assert!(
            text.contains("FUTURE_EVENT_QEMU_99") && text.contains("not json"),
            "{text}"
        );
        drop(qmp);
        server.abort();
    }
}
