//! Guest slots shared by every process on the machine.
//!
//! [`crate::capacity`] caps the guests of one process. Several processes that boot guests at
//! once (parallel CI jobs on one runner, or test binaries run side by side) would still put more
//! guests than cores on the machine, and under TCG each guest then boots slower than its
//! deadline allows for. A slot directory ([`crate::BootOptions::guest_slots`], the command
//! line's `--guest-slots` / `NIXGEN_GUEST_SLOTS`) shares one cap between them: it holds one lock
//! file per core, and a guest holds a lock on one of them per vCPU from just before QEMU (or
//! systemd-nspawn) starts until the [`crate::Machine`] is dropped. The locks are `flock`s: a
//! process that dies, however it dies, gives its slots back.
//!
//! The guest's deadline starts when QEMU starts, after its slots were taken: a wait for a slot
//! costs wall time, never a verdict.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::HarnessError;

/// How often a waiting guest tries the slots again.
const POLL: Duration = Duration::from_millis(100);

/// Slots held by one guest; dropping it gives them back.
#[derive(Debug)]
pub struct Held {
    _locks: Vec<Flock<File>>,
}

/// How many slots a slot directory has on this machine: one per core.
pub fn total() -> usize {
    crate::capacity::cores()
}

/// Takes `cpus` slots of `dir` (at most [`total`], at least one) if they are free now.
pub fn try_acquire(dir: &Path, cpus: u32) -> Result<Option<Held>, HarnessError> {
    let want = prepare(dir, cpus)?;
    try_take(dir, total(), want)
}

/// Takes `cpus` slots of `dir` as [`try_acquire`] does, waiting as long as others hold them.
/// Dropping the future while it waits holds nothing.
pub async fn acquire(dir: &Path, cpus: u32) -> Result<Held, HarnessError> {
    let want = prepare(dir, cpus)?;
    loop {
        if let Some(held) = try_take(dir, total(), want)? {
            return Ok(held);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Makes `dir` if it is missing; returns how many slots a guest of `cpus` vCPUs takes.
fn prepare(dir: &Path, cpus: u32) -> Result<usize, HarnessError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        HarnessError::io(
            format!("create the guest slot directory {}", dir.display()),
            e,
        )
    })?;
    Ok(usize::try_from(cpus)
        .unwrap_or(usize::MAX)
        .clamp(1, total()))
}

/// One pass over the slot files: `want` of them locked, or none kept.
fn try_take(dir: &Path, total: usize, want: usize) -> Result<Option<Held>, HarnessError> {
    let mut locks = Vec::with_capacity(want);
    for i in 0..total {
        let path = slot_file(dir, i);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| HarnessError::io(format!("open the guest slot {}", path.display()), e))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => locks.push(lock),
            Err((_, Errno::EWOULDBLOCK)) => continue,
            Err((_, errno)) => {
                return Err(HarnessError::io(
                    format!("lock the guest slot {}", path.display()),
                    errno.into(),
                ))
            }
        }
        if locks.len() == want {
            return Ok(Some(Held { _locks: locks }));
        }
    }
    Ok(None)
}

fn slot_file(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("slot-{i}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_taker_waits_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let all = u32::try_from(total()).unwrap();
        let first = acquire(dir.path(), all).await.unwrap();
        // Every slot is held: a second guest finds none free, and waits.
        assert!(try_acquire(dir.path(), 1).unwrap().is_none());
        let second = tokio::time::timeout(Duration::from_millis(400), acquire(dir.path(), 1)).await;
        assert!(second.is_err(), "took a slot while all were held");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(2), acquire(dir.path(), 1))
            .await
            .expect("a slot once the first guest let go");
        assert!(second.is_ok());
    }

    #[tokio::test]
    async fn more_vcpus_than_cores_take_every_slot_not_forever() {
        let dir = tempfile::tempdir().unwrap();
        let held = tokio::time::timeout(Duration::from_secs(2), acquire(dir.path(), 999))
            .await
            .expect("capped at the number of slots")
            .unwrap();
        assert_eq!(held._locks.len(), total());
    }

    #[test]
    fn a_slot_is_held_against_other_open_file_descriptions() {
        // flock is per open file description: another open of the same file (as another
        // process makes) cannot take it.
        let dir = tempfile::tempdir().unwrap();
        let held = try_take(dir.path(), 1, 1).unwrap().expect("a free slot");
        assert!(try_take(dir.path(), 1, 1).unwrap().is_none());
        drop(held);
        assert!(try_take(dir.path(), 1, 1).unwrap().is_some());
    }
}
