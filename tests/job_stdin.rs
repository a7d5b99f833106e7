//! The job pool's stdin pipes, with real processes: one writer, back-pressure,
//! and the pipe's end tied to the job's.

use std::time::Duration;

use crate::util::TempDir;
use bytes::Bytes;
use rcmd::jobs::{
    JobError, JobPool, JobSpec, PoolConfig, Status, StdinEnd, StdinRefused, Stream, Termination,
};
use tokio::sync::mpsc;

/// Generous: only a hang should ever reach it.
const DEADLINE: Duration = Duration::from_secs(60);

type Chunk = Result<Bytes, std::io::Error>;

fn pool(label: &str) -> (JobPool, TempDir) {
    let dir = TempDir::new(label);
    (JobPool::new(PoolConfig::new(dir.path().join("data"))).unwrap(), dir)
}

fn piped(command: &str, args: &[&str]) -> JobSpec {
    JobSpec { stdin: true, ..JobSpec::new(command, args.iter().map(|a| a.to_string()).collect()) }
}

/// A source the test feeds chunk by chunk; it ends when the sender is dropped.
fn fed() -> (mpsc::Sender<Chunk>, impl futures_util::Stream<Item = Chunk>) {
    let (sender, receiver) = mpsc::channel(1);
    let chunks =
        futures_util::stream::unfold(receiver, |mut r| async move { r.recv().await.map(|chunk| (chunk, r)) });
    (sender, chunks)
}

fn chunks(list: &[&'static [u8]]) -> impl futures_util::Stream<Item = Chunk> {
    futures_util::stream::iter(list.iter().map(|c| Ok(Bytes::from_static(c))).collect::<Vec<_>>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_byte_reaches_the_job_and_the_end_is_its_eof() {
    let (pool, _dir) = pool("stdin-copy");
    let id = pool.try_create(piped("cat", &[])).await.unwrap();
    let copied = pool.stdin(id).unwrap().copy_from(chunks(&[b"hello ", b"", b"\x00\xffworld"])).await;
    assert!(matches!(copied.end, StdinEnd::Complete), "{:?}", copied.end);
    assert_eq!(copied.written, 13);
    let status = tokio::time::timeout(DEADLINE, pool.wait(id)).await.expect("cat saw EOF").unwrap();
    assert_eq!(status.status(), Status::Completed(Termination::Exited(0)));
    assert_eq!(pool.output(id).unwrap().stdout, b"hello \x00\xffworld");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_writer_once_and_only_where_there_is_a_pipe() {
    let (pool, _dir) = pool("stdin-refusals");
    let plain = pool.try_create(JobSpec::new("cat", vec![])).await.unwrap();
    assert!(matches!(pool.stdin(plain), Err(JobError::Stdin { refused: StdinRefused::NotPiped, .. })));

    let id = pool.try_create(piped("cat", &[])).await.unwrap();
    let first = pool.stdin(id).unwrap();
    let refused = pool.stdin(id).err().expect("a second writer is refused");
    assert!(matches!(refused, JobError::Stdin { refused: StdinRefused::Busy, .. }), "{refused}");
    assert!(refused.to_string().contains("one writer at a time"), "{refused}");
    let copied = first.copy_from(chunks(&[b"abc"])).await;
    assert_eq!(copied.written, 3);
    assert!(matches!(
        pool.stdin(id),
        Err(JobError::Stdin { refused: StdinRefused::Closed { written: 3 }, .. })
    ));

    pool.wait(id).await.unwrap();
    assert!(matches!(pool.stdin(id), Err(JobError::Stdin { refused: StdinRefused::Ended, .. })));
    let never_started = pool.try_create(piped("/no/such/program", &[])).await.unwrap();
    assert!(matches!(pool.stdin(never_started), Err(JobError::Stdin { refused: StdinRefused::Ended, .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_waiting_on_its_source_ends_with_the_job() {
    let (pool, _dir) = pool("stdin-delete");
    let id = pool.try_create(piped("cat", &[])).await.unwrap();
    let (feed, source) = fed();
    let writer = tokio::spawn(pool.stdin(id).unwrap().copy_from(source));
    feed.send(Ok(Bytes::from_static(b"some"))).await.unwrap();
    // Once cat has echoed it, the writer waits for more that never comes;
    // deleting the job ends it.
    let echoed = pool.reader(id, Stream::Stdout, 0).unwrap().next_chunk().await.unwrap();
    assert_eq!(echoed.as_deref(), Some(&b"some"[..]));
    pool.delete(id).await.unwrap();
    let copied = tokio::time::timeout(DEADLINE, writer).await.expect("the writer ended").unwrap();
    assert!(matches!(copied.end, StdinEnd::JobEnded), "{:?}", copied.end);
    assert_eq!(copied.written, 4);
    drop(feed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_blocked_on_a_full_pipe_ends_with_the_job() {
    let (pool, _dir) = pool("stdin-full");
    // Never reads: the pipe fills and the writer waits on it.
    let id = pool.try_create(piped("sleep", &["1000"])).await.unwrap();
    let endless = futures_util::stream::repeat_with(|| Chunk::Ok(Bytes::from(vec![0u8; 64 * 1024])));
    let writer = tokio::spawn(pool.stdin(id).unwrap().copy_from(endless));
    pool.stop_with_grace(id, Duration::ZERO).await.unwrap();
    let copied = tokio::time::timeout(DEADLINE, writer).await.expect("the writer ended").unwrap();
    assert!(matches!(copied.end, StdinEnd::JobEnded | StdinEnd::JobClosed), "{:?}", copied.end);
    // Back-pressure: what went in is what the pipe holds, not the source.
    assert!(copied.written <= 1 << 20, "{} bytes written into a pipe nobody reads", copied.written);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_closes_its_stdin_ends_the_writer() {
    let (pool, _dir) = pool("stdin-closed");
    // Closes its stdin, then keeps running.
    let id = pool.try_create(piped("sh", &["-c", "exec 0<&-; sleep 1000"])).await.unwrap();
    let endless = futures_util::stream::repeat_with(|| Chunk::Ok(Bytes::from_static(b"y\n")));
    let copied = tokio::time::timeout(DEADLINE, pool.stdin(id).unwrap().copy_from(endless)).await.unwrap();
    assert!(matches!(copied.end, StdinEnd::JobClosed), "{:?}", copied.end);
    assert_eq!(pool.status(id).unwrap().status(), Status::Running);
    pool.delete(id).await.unwrap();
}

/// A job's stdin pipe must not leak into jobs started after it: one that
/// held its write end would keep the first from ever seeing EOF.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eof_reaches_a_job_while_later_jobs_run() {
    let (pool, _dir) = pool("stdin-hygiene");
    let first = pool.try_create(piped("cat", &[])).await.unwrap();
    let later = [
        pool.try_create(piped("sleep", &["1000"])).await.unwrap(),
        pool.try_create(JobSpec::new("sleep", vec!["1000".into()])).await.unwrap(),
    ];
    let copied = pool.stdin(first).unwrap().copy_from(chunks(&[b"x"])).await;
    assert!(matches!(copied.end, StdinEnd::Complete));
    let status = tokio::time::timeout(DEADLINE, pool.wait(first)).await.expect("cat saw EOF").unwrap();
    assert_eq!(status.status(), Status::Completed(Termination::Exited(0)));
    for id in later {
        pool.delete(id).await.unwrap();
    }
}
