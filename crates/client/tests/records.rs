//! Job records through the library against the real sprocketd: a job's
//! record, listings of ended jobs, and attaching to a job by handle
//! (`sprocket.record`, `sprocket.records`, `sprocket.result`). gearmand
//! keeps no records, so these run on sprocketd only.

mod common;

use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use sprocket_client::{
    Client, ClientOptions, Error, Job, JobError, JobEvent, JobHandle, Record, RecordFilter, RecordState, Worker,
    WorkerHandle,
};
use sprocket_testkit::ServerProcess;

const LIMIT: Duration = Duration::from_secs(20);

/// A fresh sprocketd, or `None` (reported as SKIPPED) when it is not built.
fn sprocketd() -> Option<ServerProcess> {
    match common::sprocketd_bin() {
        Some(bin) => Some(ServerProcess::sprocketd(&bin, &[])),
        None => {
            sprocket_testkit::skip("sprocketd not built (build sprocket-server or set SPROCKETD_BIN)");
            None
        }
    }
}

/// A worker for `report` (data, a warning, status, bytes that are not
/// UTF-8, then a result), `fails` (WORK_FAIL) and `throws` (WORK_EXCEPTION).
fn workers(addr: &str) -> WorkerHandle {
    Worker::new(addr)
        .expect("worker")
        .register("report", |job: Job| async move {
            job.data("one")?;
            job.warning("careful")?;
            job.status(1, 2)?;
            job.data(&b"\xff\x00"[..])?;
            job.status(2, 2)?;
            Ok::<_, JobError>(bytes::Bytes::from_static(b"done\xff"))
        })
        .register("fails", |_job: Job| async move { Err::<&str, _>(JobError::Fail) })
        .register("throws", |_job: Job| async move { Err::<&str, _>(JobError::exception("disk on fire")) })
        .spawn()
        .expect("spawn the workers")
}

/// Waits until the job's record says it has ended, and returns the record.
async fn ended_record(client: &Client, handle: &JobHandle) -> Record {
    let start = Instant::now();
    loop {
        if let Some(record) = client.record(handle).await.expect("ask for the record") {
            if record.state().is_final() {
                return record;
            }
        }
        assert!(start.elapsed() < LIMIT, "job {handle} did not end within {LIMIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The listing of every ended job, once it holds `count` records. With a
/// durable store the listing is read from the store, where a job's final
/// record lands with the next group commit: a moment after
/// `sprocket.record` (answered from the server's memory) shows the end.
async fn listing_of(client: &Client, count: usize) -> Vec<Record> {
    let start = Instant::now();
    loop {
        let all = client.records(&RecordFilter::new()).await.expect("list");
        if all.len() >= count || start.elapsed() > LIMIT {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The handle as another process would have it: the bytes alone.
fn bare(handle: &JobHandle) -> JobHandle {
    JobHandle::from(handle.to_string())
}

#[tokio::test]
async fn an_ended_jobs_record_and_its_replay_hold_what_the_worker_sent() {
    let Some(srv) = sprocketd() else { return };
    let w = workers(&srv.addr());
    let client = Client::new(srv.addr()).expect("client");
    let handle = client.submit_background("report", "x").await.expect("submit");
    let record = ended_record(&client, &bare(&handle)).await;

    assert_eq!(record.handle(), handle.as_bytes());
    assert_eq!(record.function(), b"report");
    assert_eq!(record.state(), RecordState::Complete);
    assert!(record.is_background());
    assert_eq!(record.attempts(), 1);
    assert_eq!(record.result(), Some(&b"done\xff"[..]));
    assert_eq!(record.error(), None);
    let chunks: Vec<&[u8]> = record.chunks().iter().map(|c| c.bytes()).collect();
    assert_eq!(chunks, [&b"one"[..], b"careful", b"\xff\x00"]);
    let status = record.status_numbers().expect("a status");
    assert_eq!((status.numerator, status.denominator), (2, 2));
    assert!(record.finished() >= record.first_started(), "{record:?}");

    // Attaching to the ended job replays what a foreground client would
    // have seen, under the job's own handle.
    let stream = client.attach(&bare(&handle)).await.expect("attach to the ended job");
    assert_eq!(stream.handle().as_bytes(), handle.as_bytes());
    let events: Vec<JobEvent> = stream.collect().await;
    assert_eq!(
        events,
        [
            JobEvent::Data("one".into()),
            JobEvent::Warning("careful".into()),
            JobEvent::Data(bytes::Bytes::from_static(b"\xff\x00")),
            JobEvent::Status { numerator: 2, denominator: 2 },
            JobEvent::Complete(bytes::Bytes::from_static(b"done\xff")),
        ]
    );
    // The result the same way a foreground submission gives it.
    let result = client.attach(&bare(&handle)).await.expect("attach again").result().await;
    assert_eq!(result.expect("the result")[..], b"done\xff"[..]);
    w.shutdown().await.expect("stop the workers");
}

#[tokio::test]
async fn attaching_to_a_queued_job_follows_it_live() {
    let Some(srv) = sprocketd() else { return };
    let client = Client::new(srv.addr()).expect("client");
    let handle = client.submit_background("later", "payload").await.expect("submit");
    let record = client.record(&bare(&handle)).await.expect("ask").expect("a queued job has a record");
    assert_eq!(record.state(), RecordState::Queued);
    assert_eq!(record.finished(), None);

    let mut stream = client.attach(&bare(&handle)).await.expect("attach to the queued job");
    // Only now does a worker come: everything it sends reaches the caller.
    let w = Worker::new(srv.addr())
        .expect("worker")
        .register("later", |job: Job| async move {
            job.data("live chunk")?;
            Ok::<_, JobError>(format!("did {}", String::from_utf8_lossy(job.payload())))
        })
        .spawn()
        .expect("spawn");
    let first = tokio::time::timeout(LIMIT, stream.next_event()).await.expect("in time").expect("an event");
    assert_eq!(first, JobEvent::Data("live chunk".into()));
    let last = tokio::time::timeout(LIMIT, stream.next_event()).await.expect("in time").expect("the end");
    assert_eq!(last, JobEvent::Complete("did payload".into()));
    assert_eq!(ended_record(&client, &bare(&handle)).await.state(), RecordState::Complete);
    w.shutdown().await.expect("stop the worker");
}

#[tokio::test]
async fn unknown_handles_have_no_record_and_end_an_attachment_at_once() {
    let Some(srv) = sprocketd() else { return };
    let client = Client::new(srv.addr()).expect("client");
    let nowhere = JobHandle::from("H:nowhere:424242");
    assert!(client.record(&nowhere).await.expect("ask").is_none());
    // With exceptions (the default) the server says why.
    let events: Vec<JobEvent> = client.attach(&nowhere).await.expect("attach").collect().await;
    assert_eq!(events, [JobEvent::Exception("unknown job".into())]);
    // A handle the server cannot name in a reply is refused outright.
    match client.attach(&JobHandle::from("not a handle")).await {
        Err(Error::UnknownJob { handle }) => assert_eq!(handle, "not a handle"),
        other => panic!("expected UnknownJob, got {:?}", other.map(|s| s.handle().clone())),
    }
    assert!(matches!(client.attach(&JobHandle::from("")).await, Err(Error::InvalidArgument(_))));

    // Without exceptions an unknown job fails like any failed job.
    let opts = ClientOptions { exceptions: false, ..ClientOptions::default() };
    let plain = Client::with_options(srv.addr(), opts).expect("client");
    let events: Vec<JobEvent> = plain.attach(&nowhere).await.expect("attach").collect().await;
    assert_eq!(events, [JobEvent::Failed]);
    assert!(plain.record(&nowhere).await.expect("ask").is_none());
}

#[tokio::test]
async fn listings_filter_by_function_state_time_and_limit_newest_first() {
    let Some(srv) = sprocketd() else { return };
    let w = workers(&srv.addr());
    let client = Client::new(srv.addr()).expect("client");
    let before = SystemTime::now() - Duration::from_secs(1);
    let mut handles = Vec::new();
    for function in ["report", "fails", "throws", "report"] {
        let handle = client.submit_background(function, "x").await.expect("submit");
        ended_record(&client, &bare(&handle)).await;
        handles.push(handle);
    }

    let all = listing_of(&client, handles.len()).await;
    let listed: Vec<&[u8]> = all.iter().map(Record::handle).collect();
    let newest_first: Vec<&[u8]> = handles.iter().rev().map(JobHandle::as_bytes).collect();
    assert_eq!(listed, newest_first);

    let reports = client.records(&RecordFilter::new().function("report")).await.expect("list");
    assert_eq!(reports.len(), 2);
    assert!(reports.iter().all(|r| r.function() == b"report" && r.state() == RecordState::Complete));

    let failed = client.records(&RecordFilter::new().state(RecordState::Failed)).await.expect("list");
    assert_eq!(failed.iter().map(Record::handle).collect::<Vec<_>>(), [handles[1].as_bytes()]);
    let thrown = client.records(&RecordFilter::new().state(RecordState::Exception)).await.expect("list");
    assert_eq!(thrown.len(), 1);
    assert_eq!(thrown[0].error(), Some(&b"disk on fire"[..]));

    let one = client.records(&RecordFilter::new().limit(1)).await.expect("list");
    assert_eq!(one.iter().map(Record::handle).collect::<Vec<_>>(), [handles[3].as_bytes()]);
    let recent = client.records(&RecordFilter::new().since(before)).await.expect("list");
    assert_eq!(recent.len(), 4);
    let future = client.records(&RecordFilter::new().since(SystemTime::now() + Duration::from_secs(3600))).await;
    assert!(future.expect("list").is_empty());
    let past = client.records(&RecordFilter::new().until(before)).await.expect("list");
    assert!(past.is_empty(), "{past:?}");

    // Refused before anything is sent.
    let err = client.records(&RecordFilter::new().limit(0)).await.expect_err("limit 0");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    w.shutdown().await.expect("stop the workers");
}

#[tokio::test]
async fn with_several_servers_a_bare_handle_is_found_where_it_lives() {
    let (Some(a), Some(b)) = (sprocketd(), sprocketd()) else { return };
    let w = workers(&b.addr());
    let only_b = Client::new(b.addr()).expect("client");
    let handle = only_b.submit_background("report", "x").await.expect("submit");
    ended_record(&only_b, &bare(&handle)).await;

    // A client of both servers that knows only the handle's bytes.
    let both = Client::new(format!("{},{}", a.addr(), b.addr())).expect("client");
    let record = both.record(&bare(&handle)).await.expect("ask").expect("found on the second server");
    assert_eq!(record.handle(), handle.as_bytes());
    let stream = both.attach(&bare(&handle)).await.expect("attach");
    assert_eq!(stream.server(), b.addr());
    assert_eq!(stream.result().await.expect("the result")[..], b"done\xff"[..]);
    // A handle that carries its server goes straight to it.
    assert!(handle.server().is_some());
    let stream = both.attach(&handle).await.expect("attach with the server known");
    assert_eq!(stream.server(), b.addr());
    assert!(both.record(&handle).await.expect("ask").is_some());
    // A handle neither server knows.
    assert!(both.record(&JobHandle::from("H:nowhere:1")).await.expect("ask").is_none());
    assert!(matches!(both.attach(&JobHandle::from("H:nowhere:1")).await, Err(Error::UnknownJob { .. })));
    // Listings merge every server's records.
    listing_of(&only_b, 1).await;
    let listed = both.records(&RecordFilter::new().function("report")).await.expect("list");
    assert_eq!(listed.len(), 1);
    w.shutdown().await.expect("stop the workers");
}

#[tokio::test]
async fn a_server_without_records_times_out_lookups_and_knows_no_job_to_attach_to() {
    let Some(gearmand) = ServerProcess::gearmand(&[]) else { return };
    let opts = ClientOptions { response_timeout: Duration::from_millis(300), ..ClientOptions::default() };
    let client = Client::with_options(gearmand.addr(), opts).expect("client");
    let handle = client.submit_background("later", "x").await.expect("submit");
    match client.record(&bare(&handle)).await {
        Err(Error::Timeout { what, .. }) => assert!(what.contains("sprocket.record"), "{what}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    let err = client.records(&RecordFilter::new()).await.expect_err("no records on gearmand");
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    match client.attach(&bare(&handle)).await {
        Err(Error::UnknownJob { handle: asked }) => assert_eq!(asked, handle.to_string()),
        other => panic!("expected UnknownJob, got {:?}", other.map(|s| s.handle().clone())),
    }
}
