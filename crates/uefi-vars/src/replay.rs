//! Replays a LINKTYPE_EDK2_MM capture through a [`Service`] and compares
//! every reply with the recorded one.

use std::borrow::Cow;

use crate::codec::{function, u32_at, uintn_at, Layout, Reader};
use crate::guid::{SMM_VARIABLE_PROTOCOL, VAR_CHECK_POLICY_MMI};
use crate::pcap::{Record, RecordKind};
use crate::service::Service;

/// One reply that differs from the capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Index of the request record in the capture.
    pub record: usize,
    /// What the request was (e.g. `SET_VARIABLE`).
    pub what: String,
    /// The request as captured.
    pub request: Vec<u8>,
    /// The reply QEMU gave.
    pub expected: Vec<u8>,
    /// `None`: the service wrote nothing back (framing error).
    pub actual: Option<Vec<u8>>,
}

impl Mismatch {
    /// Offsets at which the replies differ (length differences count as one
    /// offset past the shorter reply).
    pub fn offsets(&self) -> Vec<usize> {
        let actual = self.actual.as_deref().unwrap_or_default();
        let mut out: Vec<usize> = self
            .expected
            .iter()
            .zip(actual)
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(i, _)| i)
            .collect();
        if self.expected.len() != actual.len() {
            out.push(self.expected.len().min(actual.len()));
        }
        out
    }
}

/// Summary of a replay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Machine resets replayed.
    pub resets: usize,
    /// Requests replayed.
    pub requests: usize,
    /// Replies identical to the capture's.
    pub identical: usize,
    /// Replies that differ.
    pub mismatches: Vec<Mismatch>,
    /// Host-side errors the service reported (e.g. store writes).
    pub host_errors: Vec<String>,
}

/// Human-readable name of a request, for reports.
pub fn describe_request(request: &[u8], layout: Layout) -> String {
    let Ok(guid) = Reader::new(request).guid("HeaderGuid") else {
        return "short buffer".to_string();
    };
    let h = layout.mm_header();
    if guid == SMM_VARIABLE_PROTOCOL {
        let name = match uintn_at(request, h, layout.word, "Function") {
            Ok(f) => function::name(f).unwrap_or("UNKNOWN_FUNCTION"),
            Err(_) => "SHORT_FUNCTION",
        };
        format!("variable {name}")
    } else if guid == VAR_CHECK_POLICY_MMI {
        match u32_at(request, h.saturating_add(8), "Command") {
            Ok(c) => format!("policy command {c}"),
            Err(_) => "policy command (short)".to_string(),
        }
    } else {
        format!("event/other {guid}")
    }
}

/// Runs the capture's resets and requests through `service`, comparing each
/// reply with the recorded one.
pub fn replay(service: &mut Service, records: &[Record]) -> ReplayReport {
    let mut r = Replayer::default();
    for (i, rec) in records.iter().enumerate() {
        r.feed(service, i, rec.kind, Cow::Borrowed(&rec.payload));
    }
    r.report
}

/// [`replay`] over records as they are read (e.g. [`crate::pcap::open_file`]):
/// one record in memory at a time, each request passed on without a copy.
/// A capture that turns out malformed part way stops the replay with its
/// error.
pub fn replay_stream<E>(
    service: &mut Service,
    records: impl IntoIterator<Item = Result<Record, E>>,
) -> Result<ReplayReport, E> {
    let mut r = Replayer::default();
    for (i, rec) in records.into_iter().enumerate() {
        let rec = rec?;
        r.feed(service, i, rec.kind, Cow::Owned(rec.payload));
    }
    Ok(r.report)
}

/// A request awaiting its reply record: index, bytes, what we answered.
type Pending<'a> = (usize, Cow<'a, [u8]>, Option<Vec<u8>>);

/// The replay in progress: the report and the request awaiting its reply.
#[derive(Default)]
struct Replayer<'a> {
    report: ReplayReport,
    pending: Option<Pending<'a>>,
}

impl<'a> Replayer<'a> {
    fn feed(&mut self, service: &mut Service, i: usize, kind: RecordKind, payload: Cow<'a, [u8]>) {
        let report = &mut self.report;
        match kind {
            RecordKind::Reset => {
                report.resets = report.resets.saturating_add(1);
                if let Err(e) = service.reset() {
                    report.host_errors.push(e.to_string());
                }
            }
            RecordKind::Request => {
                report.requests = report.requests.saturating_add(1);
                let resp = service.communicate(&payload);
                self.pending = Some((i, payload, resp.reply));
            }
            RecordKind::Reply => {
                if let Some((idx, request, actual)) = self.pending.take() {
                    if actual.as_deref() == Some(&*payload) {
                        report.identical = report.identical.saturating_add(1);
                    } else {
                        report.mismatches.push(Mismatch {
                            record: idx,
                            what: describe_request(&request, service.config().layout),
                            request: request.into_owned(),
                            expected: payload.into_owned(),
                            actual,
                        });
                    }
                }
            }
            RecordKind::Other(_) => {}
        }
        report
            .host_errors
            .extend(service.take_errors().iter().map(ToString::to_string));
    }
}
