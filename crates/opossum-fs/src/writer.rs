//! The writer thread and group commit.
//!
//! Every append of a process is a [`Request`] on one channel. The writer takes the first request,
//! then everything else already queued (up to a size limit), and commits the group:
//!
//! 1. take the cross-process lock and reconcile with what other processes committed;
//! 2. check each request's condition **in order**, against the log and against the requests of
//!    this group accepted before it, and encode the accepted ones with their positions and hashes;
//! 3. write all accepted lines with one write (into space reserved ahead, ADR 0012) and make
//!    them durable with one `fdatasync`;
//! 4. add them to the in-memory index, rewrite the anchor, answer every request.
//!
//! The lock is kept for the next group when it arrives within moments of the answer, for a short
//! session at most (ADR 0012), and released after it.
//!
//! A request whose condition fails is answered with `ConditionFailed` and appends nothing; the
//! others in its group are unaffected. If the write or sync fails, every request of the group
//! gets the error (its kind, message and path) and the failed bytes are made impossible to
//! adopt: the segment is cut back to its previous end; if that fails, the anchor records the
//! group's first event as void and is synced, so that the next reconcile (in any process) cuts
//! it; if even that fails, the store refuses appends and retries the void record before each
//! later group, accepting appends again once it is durable.
//!
//! Each line records in `synced_to` the highest position that was durable before the group was
//! written: with `flush_events_immediately`, everything before the group.

use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Instant;

use opossum_core::{AppendCondition, NewEvent, Position};
use tokio::sync::oneshot;

use crate::Error;
use crate::engine::{Engine, Poison};
use crate::head::{Anchor, HeadRead, Void};
use crate::index::{IndexEntry, tag_key};
use crate::lock::StoreLock;
use crate::record::{self, ChainHash};
use crate::recovery::{self, current_anchor};
use crate::segment::{self, Segment};
use crate::vfs::{OpenMode, VfsFile};

/// A group stops taking queued requests past this many encoded bytes (estimated) …
const GROUP_MAX_BYTES: usize = 16 << 20;
/// … or this many requests.
const GROUP_MAX_REQUESTS: usize = 4096;
/// The longest a group waits for the appenders of the previous group to come back. Well under a
/// sync of a fast SSD, so it costs a lone burst little and lets concurrent appenders share syncs.
const LINGER: std::time::Duration = std::time::Duration::from_micros(200);
/// Save an index snapshot from the writer after this many events since the last one.
const SNAPSHOT_EVERY: u64 = 250_000;
/// The last segment is made longer in steps of this much, ahead of the appends that fill it
/// (ADR 0012): a write into space already allocated changes neither the file's length nor its
/// allocation, so its `fdatasync` has only the data to write.
const RESERVE_STEP: u64 = 1 << 20;
/// After answering a group, the writer keeps the lock this long for the next append (a serial
/// appender's round trip is well under it) …
const HOLD_LINGER: std::time::Duration = std::time::Duration::from_micros(500);
/// … but holds it no longer than this in a row, so that other processes get their turn.
const MAX_HOLD: std::time::Duration = std::time::Duration::from_millis(5);
/// After a session of [`MAX_HOLD`], the writer waits this long before taking the lock again.
const TURN_GAP: std::time::Duration = std::time::Duration::from_micros(200);
/// At close, the writer waits at most this long for the lock to give back the reserved space.
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// One append waiting for the writer.
pub(crate) struct Request {
    pub(crate) events: Vec<NewEvent>,
    pub(crate) condition: Option<AppendCondition>,
    pub(crate) reply: oneshot::Sender<Result<Position, Error>>,
}

impl Request {
    fn estimated_bytes(&self) -> usize {
        self.events
            .iter()
            .map(|e| e.payload().as_json().len() + 64 * e.tags().len() + 256)
            .sum()
    }
}

/// A request accepted into the group being committed.
struct Accepted {
    request: usize,
    first: u64,
}

/// What the index learns about each written event.
struct Written {
    position: u64,
    offset: u64,
    hash: ChainHash,
}

/// The writer thread's state.
pub(crate) struct Writer {
    lock: StoreLock,
    committer: Committer,
}

/// Everything the writer uses while it holds the lock.
struct Committer {
    shared: Arc<Engine>,
    /// Write handle of the last segment, by its first position.
    file: Option<(u64, Arc<dyn VfsFile>)>,
    buf: Vec<u8>,
    /// The anchor as read (or written) last under the lock: where the next anchor goes.
    head: Option<HeadRead>,
    /// This writer reserved space past the end of the log (given back at close).
    reserved: bool,
    /// The index and `head` are the log exactly as this writer's last commit left it, and the
    /// lock has been held ever since (within one session): the next group need not reconcile.
    current: bool,
    /// The length of the segment (by its first position) as this writer last learnt or made
    /// it, within the current session. Asking the file system again before every group would
    /// cost more than the call: where timestamps are multigrain (Linux 6.13 and later), a
    /// `statx` makes the next write update the inode, so each `fdatasync` writes it too.
    known_len: Option<(u64, u64)>,
}

impl Writer {
    pub(crate) fn new(shared: Arc<Engine>, lock: StoreLock) -> Writer {
        Writer {
            lock,
            committer: Committer {
                shared,
                file: None,
                buf: Vec::new(),
                head: None,
                reserved: false,
                current: false,
                known_len: None,
            },
        }
    }

    /// Serves requests until every sender is gone.
    pub(crate) fn run(mut self, requests: Receiver<Request>) {
        // How many appenders the last group served: the concurrency to wait for next time.
        let mut last_group = 1;
        while let Ok(first) = requests.recv() {
            let group = gather(first, &requests, &mut last_group);
            if self.session(group, &requests, &mut last_group) {
                // Held for the longest allowed: leave a gap in which a process polling for the
                // lock can take it, before taking it again.
                std::thread::sleep(TURN_GAP);
            }
            // After the answers and outside the cross-process lock: neither this process's
            // appenders nor another process wait for the snapshot's file I/O.
            self.committer.maybe_snapshot();
        }
        self.release_reserved();
    }

    /// Commits `group`, then, while the lock is still held, every group that follows within
    /// [`HOLD_LINGER`] of the last answer, for at most [`MAX_HOLD`] in all (ADR 0012): an
    /// appender that appends again as soon as it is answered finds the lock already taken,
    /// and pays for taking it (the advisory lock and the lease file) once per session instead
    /// of once per append. Every group is answered as soon as it is committed. Returns true
    /// when the session ended because it reached [`MAX_HOLD`].
    fn session(
        &mut self,
        group: Vec<Request>,
        requests: &Receiver<Request>,
        last_group: &mut usize,
    ) -> bool {
        let started = Instant::now();
        let shared = Arc::clone(&self.committer.shared);
        let span = tracing::debug_span!("append", requests = group.len());
        let _enter = span.enter();
        let timeout = shared.options.get_lock_timeout();
        let committer = &mut self.committer;
        let mut waiting = Some(group);
        let mut groups = 0_u32;
        let mut full = false;
        let held = self.lock.with(timeout, || {
            let Some(mut group) = waiting.take() else {
                return;
            };
            // Newly taken: another process may have written (or cut) since.
            committer.current = false;
            committer.known_len = None;
            loop {
                let results = match shared.poisoned() {
                    Some(poison) => match committer.retry_fence(&poison) {
                        Ok(()) => {
                            committer.current = false;
                            committer.commit_locked(&group)
                        }
                        Err(reason) => fail_all(group.len(), &Error::Poisoned { reason }),
                    },
                    None => committer.commit_locked(&group),
                };
                groups += 1;
                answer(group, results);
                if started.elapsed() >= MAX_HOLD {
                    full = true;
                    return;
                }
                match requests.recv_timeout(HOLD_LINGER) {
                    Ok(next) => group = gather(next, requests, last_group),
                    Err(_) => return,
                }
            }
        });
        if let Err(e) = held {
            if let Some(group) = waiting.take() {
                let failures = fail_all(group.len(), &e);
                answer(group, failures);
            }
        }
        tracing::debug!(
            groups,
            micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "lock session ended"
        );
        full
    }

    /// At close: cuts the zeros reserved past the end of the log, so that a closed store's
    /// files hold nothing but event lines. Under the lock, and only when the anchor shows the
    /// log as this writer left it (another process may have appended since). Best effort: when
    /// the lock is busy the zeros stay, and every reader and the next writer treat them as free
    /// space.
    fn release_reserved(&mut self) {
        if !self.committer.reserved {
            return;
        }
        let timeout = self
            .committer
            .shared
            .options
            .get_lock_timeout()
            .min(RELEASE_WAIT);
        let committer = &mut self.committer;
        let released = self
            .lock
            .with(timeout, || committer.release_reserved_locked());
        match released {
            Ok(Ok(())) => {}
            Ok(Err(e)) | Err(e) => {
                tracing::debug!(error = %e, "the space reserved at the end of the log stays");
            }
        }
    }
}

/// Takes `first` and whatever else is already queued (up to the group limits) as one group.
/// With several appenders at work, the ones answered by the last commit are about to send
/// their next append; waiting a moment for them lets one sync serve them all. A lone appender
/// never waits.
fn gather(first: Request, requests: &Receiver<Request>, last_group: &mut usize) -> Vec<Request> {
    let mut bytes = first.estimated_bytes();
    let mut group = vec![first];
    let deadline = (*last_group > 1).then(|| Instant::now() + LINGER);
    while group.len() < GROUP_MAX_REQUESTS && bytes < GROUP_MAX_BYTES {
        let next = match deadline {
            Some(deadline) if group.len() < *last_group => {
                let left = deadline.saturating_duration_since(Instant::now());
                requests.recv_timeout(left).ok()
            }
            _ => requests.try_recv().ok(),
        };
        let Some(next) = next else { break };
        bytes += next.estimated_bytes();
        group.push(next);
    }
    *last_group = group.len();
    group
}

/// Sends each request its result.
fn answer(group: Vec<Request>, results: Vec<Result<Position, Error>>) {
    for (request, result) in group.into_iter().zip(results) {
        // The caller may have stopped waiting; its append still happened (or not).
        let _ = request.reply.send(result);
    }
}

/// The same failure for every request of a group: each gets the error's variant, path and
/// message (a full disk is `DiskFull` for all of them, a lock timeout `LockTimeout`).
fn fail_all(n: usize, error: &Error) -> Vec<Result<Position, Error>> {
    (0..n).map(|_| Err(error.duplicate())).collect()
}

impl Committer {
    fn commit_locked(&mut self, group: &[Request]) -> Vec<Result<Position, Error>> {
        let shared = Arc::clone(&self.shared);
        let sync = shared.options.syncs();
        // 1. Catch up with other processes and repair a torn tail left by a crashed one;
        //    unless this writer's own last commit, under the lock held since, left the log as
        //    the index knows it (on a local disk: where clients may cache, every group checks
        //    the server again).
        if !self.current || self.shared.revalidate {
            if let Err(e) = self.reconcile() {
                self.current = false;
                return fail_all(group.len(), &e);
            }
        }
        // Only a commit that completes (or writes nothing) leaves the log as known.
        self.current = false;

        // 2. Check conditions in order and encode the accepted requests.
        let index = shared.read_index();
        let mut results: Vec<Result<Position, Error>> = Vec::with_capacity(group.len());
        let mut accepted: Vec<Accepted> = Vec::new();
        let mut written: Vec<Written> = Vec::new();
        self.buf.clear();
        let mut prev = index.head_hash;
        let mut next = index.head() + 1;
        let synced_to = index.durable;
        // One commit time for the group, by this writer's clock.
        let stored_at = Some(opossum_core::Timestamp::now());
        for (i, request) in group.iter().enumerate() {
            if let Some(condition) = &request.condition {
                let in_group = group_violates(group, &accepted, condition);
                match shared.violates(&index, condition) {
                    Ok(false) if !in_group => {}
                    Ok(_) => {
                        results.push(Err(opossum_core::Error::ConditionFailed {
                            after: condition.after,
                        }
                        .into()));
                        continue;
                    }
                    Err(e) => {
                        results.push(Err(e));
                        continue;
                    }
                }
            }
            let first = next;
            let last = first + request.events.len() as u64 - 1;
            let (Ok(last_pos), mark) = (Position::new(last), self.buf.len()) else {
                results.push(Err(Error::Poisoned {
                    reason: "position overflow".into(),
                }));
                continue;
            };
            let mut encoded = Vec::with_capacity(request.events.len());
            let mut chain = prev;
            let mut failure = None;
            for (k, event) in request.events.iter().enumerate() {
                let position = first + k as u64;
                let offset = self.buf.len() as u64;
                let Ok(pos) = Position::new(position) else {
                    continue;
                };
                match record::encode(
                    &mut self.buf,
                    chain,
                    pos,
                    last_pos,
                    synced_to,
                    stored_at,
                    event,
                ) {
                    Ok(hash) => {
                        chain = hash;
                        encoded.push(Written {
                            position,
                            offset,
                            hash,
                        });
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            if let Some(e) = failure {
                self.buf.truncate(mark);
                results.push(Err(opossum_core::Error::InvalidPayload { source: e }.into()));
                continue;
            }
            prev = chain;
            next = last + 1;
            written.extend(encoded);
            accepted.push(Accepted { request: i, first });
            results.push(Ok(last_pos));
        }
        if accepted.is_empty() {
            self.current = true;
            return results;
        }

        // 3. One write, one sync.
        let roll = index
            .segments
            .last()
            .is_none_or(|s| s.end >= shared.options.segment_bytes() && s.first <= index.head());
        let head_before = index.head();
        drop(index);
        let first_hash = written.first().map_or(ChainHash::GENESIS, |w| w.hash);
        let (segment_first, base) = match self.write(roll, head_before + 1, first_hash, sync) {
            Ok(v) => v,
            Err(e) => {
                let failures = fail_all(accepted.len(), &e);
                for (a, failure) in accepted.iter().zip(failures) {
                    results[a.request] = failure;
                }
                return results;
            }
        };

        // 3b. Where clients may cache, read back what was written before acknowledging it.
        if shared.revalidate {
            if let Err(e) = self.confirm_written(segment_first, base, head_before + 1, first_hash) {
                let failures = fail_all(accepted.len(), &e);
                for (a, failure) in accepted.iter().zip(failures) {
                    results[a.request] = failure;
                }
                return results;
            }
        }

        shared
            .appends_committed
            .fetch_add(accepted.len() as u64, std::sync::atomic::Ordering::Relaxed);
        shared
            .group_commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);

        // 4. Publish: index first (this process), then the anchor (other processes).
        {
            let mut index = shared.write_index();
            if roll {
                let path = shared.layout.segment(segment_first);
                match segment::open_read(&*shared.vfs, &path) {
                    Ok(file) => {
                        if index
                            .segments
                            .last()
                            .is_none_or(|s| s.first != segment_first)
                        {
                            index.segments.push(Segment {
                                first: segment_first,
                                end: 0,
                                path,
                                file,
                            });
                        }
                    }
                    Err(e) => {
                        shared.poison(Poison {
                            reason: format!("cannot reopen the new segment: {e}"),
                            fence: None,
                        });
                    }
                }
            }
            let mut keys = Vec::new();
            // `written` holds the accepted events in order, so walk both together.
            let events = accepted.iter().flat_map(|a| group[a.request].events.iter());
            for (event, w) in events.zip(&written) {
                // A reader of this process may already have indexed the commit from the log.
                if w.position != index.head() + 1 {
                    continue;
                }
                keys.clear();
                keys.extend(event.tags().iter().map(|t| tag_key(t.key(), t.value())));
                index.push(&IndexEntry {
                    position: w.position,
                    offset: base + w.offset,
                    event_type: event.event_type().as_str(),
                    tag_keys: &keys,
                    hash: w.hash,
                });
            }
            if let Some(last) = index.segments.last_mut() {
                last.end = base + self.buf.len() as u64;
            }
            if sync {
                index.durable = index.head();
            }
            let anchor = current_anchor(&index, sync);
            let seen = self.seen_head();
            // Where clients may cache, the anchor reaches the server before the lock is
            // released (close-to-open: the next holder re-reads it there).
            match shared.head.write(anchor, &seen, shared.revalidate) {
                Ok(now) => {
                    self.head = Some(now);
                    self.current = true;
                }
                Err(e) => {
                    // The events are durable and indexed here; other processes adopt them at
                    // their next append or open. A torn slot is ignored by every reader, and
                    // the next commit reads the anchor again before writing it.
                    tracing::warn!(error = %e, "could not update head.json after a commit");
                    self.head = None;
                }
            }
        }
        shared.announce();
        results
    }

    /// Catches up with other processes under the lock, repairing what a crashed one left.
    fn reconcile(&mut self) -> Result<(), Error> {
        let shared = Arc::clone(&self.shared);
        let mut index = shared.write_index();
        let reconciled = recovery::reconcile_locked(
            &mut index,
            &*shared.vfs,
            &shared.layout,
            &shared.head,
            shared.options.syncs(),
            false,
        )?;
        for r in reconciled.repairs {
            tracing::warn!(repair = ?r, "repaired the log before appending");
        }
        drop(index);
        shared.announce();
        self.head = Some(reconciled.head);
        Ok(())
    }

    /// [`Writer::release_reserved`] under the lock. Only when the log is as this writer left
    /// it (the anchor names this index's head, nothing is void, appends are accepted):
    /// otherwise repairs or another process's commits are due, which the next open or append
    /// deals with and reports, and the zeros stay until then.
    fn release_reserved_locked(&mut self) -> Result<(), Error> {
        let shared = Arc::clone(&self.shared);
        if shared.poisoned().is_some() {
            return Ok(());
        }
        let read = if shared.revalidate {
            shared.head.read_fresh()?
        } else {
            shared.head.read()?
        };
        let index = shared.read_index();
        let as_left = read.anchor().is_some_and(|a| {
            a.position == index.head() && a.hash == index.head_hash && a.void.is_none()
        });
        drop(index);
        if as_left {
            self.give_back_last()?;
            self.reserved = false;
        }
        Ok(())
    }

    /// Cuts the reserved zeros off the index's last segment, through this writer's handle on
    /// it (nothing when the writer has none: it reserved nothing there).
    fn give_back_last(&self) -> Result<(), Error> {
        let index = self.shared.read_index();
        let Some(last) = index.segments.last() else {
            return Ok(());
        };
        let (first, end, path) = (last.first, last.end, last.path.clone());
        drop(index);
        match self.file.as_ref().filter(|(f, _)| *f == first) {
            Some((_, file)) => segment::give_back(&**file, &path, end),
            None => Ok(()),
        }
    }

    /// Makes sure the last segment is at least `want` bytes long, reserving space in
    /// [`RESERVE_STEP`]s (never past the segment's target size by more than the group). A
    /// failure is only logged: the write then extends the file itself, as without reserving.
    fn reserve(&mut self, first: u64, file: &dyn VfsFile, path: &std::path::Path, want: u64) {
        let len = match self.known_len {
            Some((segment, len)) if segment == first => len,
            _ => match file.len() {
                Ok(len) => len,
                Err(_) => return,
            },
        };
        self.known_len = Some((first, len.max(want)));
        if len >= want {
            return;
        }
        let target = want
            .next_multiple_of(RESERVE_STEP)
            .min(want.max(self.shared.options.segment_bytes()));
        match file.allocate(target) {
            Ok(()) => {
                self.reserved = true;
                self.known_len = Some((first, target));
            }
            Err(e) => {
                tracing::debug!(file = %path.display(), error = %e, "could not reserve space ahead of the appends");
            }
        }
    }

    /// When a new segment starts, cuts the reserved zeros off the one before it, so that a
    /// sealed segment ends with its last line. Best effort (readers skip such zeros anyway).
    fn seal_previous(&self) {
        if let Err(e) = self.give_back_last() {
            tracing::debug!(error = %e, "could not cut the reserved space off a sealed segment");
        }
    }

    /// Writes the group's bytes at the end of the log (in a new segment when `roll`), syncing
    /// when `sync`. Returns the segment's first position and the offset the bytes start at.
    /// On failure the bytes are made impossible to adopt (see the module docs).
    fn write(
        &mut self,
        roll: bool,
        next_position: u64,
        first_hash: ChainHash,
        sync: bool,
    ) -> Result<(u64, u64), Error> {
        let shared = Arc::clone(&self.shared);
        let (first, end) = if roll {
            (next_position, 0)
        } else {
            let index = shared.read_index();
            match index.segments.last() {
                Some(s) => (s.first, s.end),
                None => (next_position, 0),
            }
        };
        let path = shared.layout.segment(first);
        if roll {
            self.seal_previous();
        }
        if self.file.as_ref().is_none_or(|(f, _)| *f != first) {
            let file = shared
                .vfs
                .open(&path, OpenMode::ReadWrite)
                .map_err(|e| Error::io("open", &path, e))?;
            // The segment's name must be durable before any event in it is acknowledged.
            // Synced whenever this writer starts writing a segment, not only when it creates
            // one: a segment whose creation failed half-way (its directory sync) is found
            // and reused by the next group, and another process may have created it.
            let events_dir = shared.layout.events_dir();
            shared
                .vfs
                .sync_dir(&events_dir)
                .map_err(|e| Error::io("sync", &events_dir, e))?;
            self.file = Some((first, file));
        }
        let Some((_, file)) = &self.file else {
            return Err(Error::Closed);
        };
        let file = Arc::clone(file);
        // Where clients may cache (a network share), the file's length is what tells them what
        // is new: nothing is reserved there.
        if !shared.revalidate {
            self.reserve(first, &*file, &path, end + self.buf.len() as u64);
        }
        let written = file
            .write_all_at(&self.buf, end)
            .and_then(|()| if sync { file.sync_data() } else { Ok(()) });
        let Err(e) = written else {
            return Ok((first, end));
        };
        let error = Error::io("append to", &path, e);
        let void = Void {
            position: next_position,
            hash: first_hash,
        };
        self.abandon(end, void, &error);
        Err(error)
    }

    /// Makes a failed group impossible to adopt: cuts the segment back to `end`, where the
    /// group started (synced); when that fails, records the group as void.
    fn abandon(&mut self, end: u64, void: Void, error: &Error) {
        let Some((_, file)) = &self.file else {
            return;
        };
        let file = Arc::clone(file);
        self.known_len = None;
        let undone = file.set_len(end).and_then(|()| file.sync_data());
        if let Err(undo) = undone {
            self.fence(
                void,
                format!("{error}; cutting it back failed too ({undo})"),
            );
        }
    }

    /// Checks, through the file system rather than this client's cache, that the group's bytes
    /// are in the log exactly as written and end it, and that no other writer rewrote the
    /// anchor meanwhile. Otherwise another writer wrote while this one held the lock: the
    /// file system does not honour it. The group is then recorded as void and refused.
    fn confirm_written(
        &mut self,
        segment_first: u64,
        base: u64,
        first_position: u64,
        first_hash: ChainHash,
    ) -> Result<(), Error> {
        let shared = Arc::clone(&self.shared);
        let path = shared.layout.segment(segment_first);
        let end = base + self.buf.len() as u64;
        let void = Void {
            position: first_position,
            hash: first_hash,
        };
        let checked = self
            .read_back(&path, base, end)
            .and_then(|problem| match problem {
                Some(problem) => Ok(Some(problem)),
                None => match shared.head.read_fresh()? {
                    now if Some(now) == self.head || self.head.is_none() => Ok(None),
                    _ => Ok(Some(
                        "head.json was rewritten by another writer during the append".to_owned(),
                    )),
                },
            });
        let detail = match checked {
            Ok(None) => return Ok(()),
            Ok(Some(detail)) => detail,
            Err(e) => {
                // The check itself failed: the group is not acknowledged, so it must not be
                // adopted later either.
                self.abandon(base, void, &e);
                return Err(e);
            }
        };
        tracing::error!(store = %shared.layout.dir().display(), %detail, "another writer wrote while this one held the lock");
        // Not cut back: the bytes past `base` may be the other writer's.
        self.fence(void, detail.clone());
        Err(Error::LockNotHonoured {
            path: shared.layout.dir().to_path_buf(),
            detail,
        })
    }

    /// `Some(problem)` unless `path` ends at `end` and holds this group's bytes from `base`.
    fn read_back(
        &self,
        path: &std::path::Path,
        base: u64,
        end: u64,
    ) -> Result<Option<String>, Error> {
        let Some((_, file)) = &self.file else {
            return Err(Error::Closed);
        };
        file.refresh().map_err(|e| Error::io("inspect", path, e))?;
        let len = file.len().map_err(|e| Error::io("inspect", path, e))?;
        // Only zeros may follow: space a process on the server's own disk reserved.
        if len < end || !segment::zeros_after(&**file, path, end)? {
            return Ok(Some(format!(
                "{} is {len} bytes long after the append, which ended it at byte {end}, and \
                 holds other data after it",
                path.display()
            )));
        }
        let fresh = segment::open_read(&*self.shared.vfs, path)?;
        let mut back = vec![0u8; self.buf.len()];
        fresh
            .read_exact_at(&mut back, base)
            .map_err(|e| Error::io("read", path, e))?;
        if back != self.buf {
            return Ok(Some(format!(
                "the bytes read back from {} at {base} differ from those written",
                path.display()
            )));
        }
        Ok(None)
    }

    /// Records `void` in the anchor, synced, so no process ever adopts the failed append; when
    /// even that fails, refuses appends until it can be recorded.
    fn fence(&mut self, void: Void, reason: String) {
        let shared = Arc::clone(&self.shared);
        let index = shared.read_index();
        let fence = Anchor {
            void: Some(void),
            ..current_anchor(&index, shared.options.syncs())
        };
        drop(index);
        tracing::error!(%reason, position = void.position, "a failed append could not be cut back; recording it as void");
        let seen = self.seen_head();
        match shared.head.write(fence, &seen, true) {
            Ok(now) => self.head = Some(now),
            Err(e) => {
                self.head = None;
                shared.poison(Poison {
                    reason: format!("{reason}; recording it as void failed ({e})"),
                    fence: Some(fence),
                });
            }
        }
    }

    /// The anchor as last read or written under the lock, read again when unknown.
    fn seen_head(&self) -> HeadRead {
        self.head.unwrap_or_else(|| {
            self.shared
                .head
                .read()
                .unwrap_or_else(|_| HeadRead::missing())
        })
    }

    /// Tries again to make a poisoned store's void record durable. `Err` keeps refusing.
    fn retry_fence(&mut self, poison: &Poison) -> Result<(), String> {
        let Some(fence) = poison.fence else {
            return Err(poison.reason.clone());
        };
        let shared = Arc::clone(&self.shared);
        let written = shared
            .head
            .read()
            .and_then(|seen| shared.head.write(fence, &seen, true));
        match written {
            Ok(now) => {
                self.head = Some(now);
                shared.cure();
                tracing::warn!("the failed append is now recorded as void; appends resume");
                Ok(())
            }
            Err(e) => Err(format!("{} (still cannot record it: {e})", poison.reason)),
        }
    }

    fn maybe_snapshot(&self) {
        let head = self.shared.read_index().head();
        let saved = *self
            .shared
            .snapshot_head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if saved == u64::MAX || head.saturating_sub(saved) >= SNAPSHOT_EVERY {
            if let Err(e) = self.shared.save_snapshot() {
                tracing::warn!(error = %e, "could not save the index snapshot");
            }
        }
    }
}

/// True when an event accepted earlier in this group violates `condition`.
fn group_violates(group: &[Request], accepted: &[Accepted], condition: &AppendCondition) -> bool {
    let after = condition.after.map_or(0, Position::get);
    accepted.iter().any(|a| {
        group[a.request]
            .events
            .iter()
            .enumerate()
            .any(|(k, e)| a.first + k as u64 > after && condition.fail_if_events_match.matches(e))
    })
}
