//! Runs our service over the steps QEMU ran and compares every reply and
//! the final stores.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use uefi_vars::codec::Layout;
use uefi_vars::persist::{json, non_volatile, MemoryStorage};
use uefi_vars::replay::describe_request;
use uefi_vars::{Config, MmResponse, Service};

use crate::compat::{self, Context};
use crate::qemu::{Outcome, QemuRun};

/// One request whose answers differ.
#[derive(Clone, Debug)]
pub struct Difference {
    /// Index of the step in the script.
    pub step: usize,
    /// What the request was (e.g. `variable SET_VARIABLE`).
    pub what: String,
    pub request: Vec<u8>,
    pub qemu_status: u16,
    pub qemu_reply: Option<Vec<u8>>,
    pub our_status: u16,
    pub our_reply: Option<Vec<u8>>,
    /// The compat id (`docs/compat.md`) that explains it, if any.
    pub compat: Option<&'static str>,
}

impl Difference {
    /// Offsets at which the replies differ.
    pub fn offsets(&self) -> Vec<usize> {
        let a = self.qemu_reply.as_deref().unwrap_or_default();
        let b = self.our_reply.as_deref().unwrap_or_default();
        let mut out: Vec<usize> = a
            .iter()
            .zip(b)
            .enumerate()
            .filter(|(_, (x, y))| x != y)
            .map(|(i, _)| i)
            .collect();
        if a.len() != b.len() {
            out.push(a.len().min(b.len()));
        }
        out
    }

    /// A multi-line description for reports.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "step {} {}: QEMU status {:#x}, ours {:#x}; compat: {}\n",
            self.step,
            self.what,
            self.qemu_status,
            self.our_status,
            self.compat.unwrap_or("UNLISTED")
        );
        let offs = self.offsets();
        let _ = writeln!(
            s,
            "  differs at {:x?}{}",
            &offs[..offs.len().min(16)],
            if offs.len() > 16 { " ..." } else { "" }
        );
        let show = |b: Option<&Vec<u8>>| match b {
            Some(b) => format!("{:02x?}", &b[..b.len().min(96)]),
            None => "(no reply)".to_string(),
        };
        let _ = writeln!(
            s,
            "  QEMU: {}\n  ours: {}",
            compat::brief(&self.request, self.qemu_reply.as_deref()),
            compat::brief(&self.request, self.our_reply.as_deref())
        );
        let _ = writeln!(s, "  request {}", show(Some(&self.request)));
        let _ = writeln!(s, "  QEMU    {}", show(self.qemu_reply.as_ref()));
        let _ = write!(s, "  ours    {}", show(self.our_reply.as_ref()));
        s
    }
}

/// The final stores: QEMU's JSON file against ours.
#[derive(Clone, Debug, Default)]
pub struct StoreComparison {
    /// Byte-identical JSON text.
    pub identical_text: bool,
    /// Same variables (decoded) in the same order.
    pub identical: bool,
    /// Variables that differ (`guid name`), with the compat id that
    /// explains each, if any.
    pub differences: Vec<(String, Option<&'static str>)>,
    /// QEMU's file could not be decoded (message).
    pub qemu_unreadable: Option<String>,
}

/// The outcome of a comparison.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub requests: usize,
    pub resets: usize,
    pub identical: usize,
    /// Listed differences per compat id (requests and store entries).
    pub listed: BTreeMap<&'static str, usize>,
    /// Every request difference (listed or not).
    pub differences: Vec<Difference>,
    pub store: StoreComparison,
}

impl Report {
    /// Differences no compat id explains (requests and store).
    pub fn unlisted(&self) -> usize {
        self.differences
            .iter()
            .filter(|d| d.compat.is_none())
            .count()
            + self
                .store
                .differences
                .iter()
                .filter(|(_, c)| c.is_none())
                .count()
            + usize::from(self.store.qemu_unreadable.is_some())
    }

    /// Adds another report's numbers (for suite totals).
    pub fn absorb(&mut self, other: &Report) {
        self.requests += other.requests;
        self.resets += other.resets;
        self.identical += other.identical;
        for (k, v) in &other.listed {
            *self.listed.entry(k).or_default() += v;
        }
        self.differences.extend(other.differences.iter().cloned());
        self.store
            .differences
            .extend(other.store.differences.iter().cloned());
        if self.store.qemu_unreadable.is_none() {
            self.store.qemu_unreadable = other.store.qemu_unreadable.clone();
        }
    }

    /// The summary the suite prints.
    pub fn summary(&self) -> String {
        let store_listed = self
            .store
            .differences
            .iter()
            .filter(|(_, c)| c.is_some())
            .count();
        let mut s = format!(
            "requests compared: {}\nidentical: {}\nlisted differences: {} ({} replies, {} final-store entries)\n",
            self.requests,
            self.identical,
            self.listed.values().sum::<usize>(),
            self.listed.values().sum::<usize>() - store_listed,
            store_listed
        );
        for (id, n) in &self.listed {
            let _ = writeln!(s, "  compat::{} {}", id.replace('-', "_"), n);
        }
        let _ = writeln!(s, "unlisted differences: {}", self.unlisted());
        for d in self
            .differences
            .iter()
            .filter(|d| d.compat.is_none())
            .take(10)
        {
            let _ = writeln!(s, "{}", d.describe());
        }
        for (v, _) in self.store.differences.iter().filter(|(_, c)| c.is_none()) {
            let _ = writeln!(s, "final store differs (unlisted): {v}");
        }
        if let Some(e) = &self.store.qemu_unreadable {
            let _ = writeln!(s, "QEMU's final store unreadable: {e}");
        }
        s
    }
}

/// Changes our answer before it is compared (tests use it to show that a
/// wrong reply fails the suite). Arguments: step index, request, response.
pub type Tamper<'a> = &'a dyn Fn(usize, &[u8], &mut MmResponse);

/// Runs our service over `run`'s steps, from `start_store`, and compares.
pub fn compare(
    run: &QemuRun,
    start_store: Option<&[u8]>,
    config: Config,
    tamper: Option<Tamper<'_>>,
) -> Result<Report, uefi_vars::Error> {
    let storage = match start_store {
        Some(t) => MemoryStorage::from_text(String::from_utf8_lossy(t).into_owned()),
        None => MemoryStorage::new(),
    };
    let mut svc = Service::new(config, Box::new(storage))?;
    let mut report = Report::default();
    let mut ctx = Context::new(run.version);
    for (step, o) in run.outcomes.iter().enumerate() {
        match o {
            Outcome::Reset => {
                report.resets += 1;
                svc.reset()?;
                ctx.reset(svc.store());
            }
            Outcome::BufferSize(size) => {
                svc.set_buffer_size(*size);
                ctx.set_buffer_size(*size);
            }
            Outcome::Request {
                request,
                status,
                reply,
            } => {
                report.requests += 1;
                let before = compat::is_set_variable(request).then(|| svc.store().clone());
                let mut ours = svc.communicate(request);
                if let Some(t) = tamper {
                    t(step, request, &mut ours);
                }
                let our_status = ours.status.code();
                let same = our_status == *status && ours.reply == *reply;
                let id = compat::observe(
                    &mut ctx,
                    &compat::Exchange {
                        request,
                        qemu_status: *status,
                        qemu_reply: reply.as_deref(),
                        ours: &ours,
                        same,
                        store: svc.store(),
                        before: before.as_ref(),
                    },
                );
                if same {
                    report.identical += 1;
                } else {
                    if let Some(id) = id {
                        *report.listed.entry(id).or_default() += 1;
                    }
                    report.differences.push(Difference {
                        step,
                        what: describe_request(request, Layout::X64),
                        request: request.clone(),
                        qemu_status: *status,
                        qemu_reply: reply.clone(),
                        our_status,
                        our_reply: ours.reply.clone(),
                        compat: id,
                    });
                }
            }
        }
    }
    report.store = compare_stores(&run.final_store, &svc, &ctx);
    for (_, id) in &report.store.differences {
        if let Some(id) = id {
            *report.listed.entry(id).or_default() += 1;
        }
    }
    Ok(report)
}

fn compare_stores(qemu_text: &[u8], svc: &Service, ctx: &Context) -> StoreComparison {
    let vars: Vec<_> = svc.store().iter().collect();
    let ours_nv = non_volatile(&vars);
    let our_text = json::encode(&ours_nv).unwrap_or_default();
    let mut cmp = StoreComparison {
        identical_text: our_text.as_bytes() == qemu_text,
        ..StoreComparison::default()
    };
    let theirs = if qemu_text.is_empty() {
        Vec::new()
    } else {
        match json::decode(qemu_text) {
            Ok(v) => v,
            Err(e) => {
                // Our strict decoder refuses what QEMU wrote: a variable
                // QEMU accepted through a listed difference (an empty or
                // malformed name) explains it, or names QEMU wrote lossily
                // that collide.
                let lossy = ours_nv
                    .iter()
                    .any(|v| v.name.units().iter().any(|&u| u >= 0x80));
                match ctx
                    .unreadable_store_id()
                    .or(lossy.then_some(compat::JSON_NAMES))
                {
                    Some(id) => cmp
                        .differences
                        .push((format!("QEMU's store: {e}"), Some(id))),
                    None => cmp.qemu_unreadable = Some(e.to_string()),
                }
                return cmp;
            }
        }
    };
    let ours: Vec<_> = ours_nv.iter().map(|v| (*v).clone()).collect();
    cmp.identical = ours == theirs;
    if cmp.identical {
        return cmp;
    }
    let key = |v: &uefi_vars::variable::Variable| format!("{} {}", v.guid, v.name);
    let mut seen = std::collections::BTreeSet::new();
    for v in ours.iter().filter(|v| !theirs.contains(v)) {
        if seen.insert(key(v)) {
            cmp.differences
                .push((format!("{} (ours)", key(v)), ctx.store_id(v.guid, &v.name)));
        }
    }
    for v in theirs.iter().filter(|v| !ours.contains(v)) {
        if seen.insert(key(v)) {
            // QEMU writes every unit >= 0x80 as '?'.
            let lossy = ours.iter().any(|o| {
                o.guid == v.guid
                    && o.name.units().iter().any(|&u| u >= 0x80)
                    && o.name.units().len() == v.name.units().len()
                    && o.name.units().iter().zip(v.name.units()).all(|(&a, &b)| {
                        if a >= 0x80 {
                            b == u16::from(b'?')
                        } else {
                            a == b
                        }
                    })
            });
            let id = ctx
                .store_id(v.guid, &v.name)
                .or(lossy.then_some(compat::JSON_NAMES));
            cmp.differences.push((format!("{} (QEMU)", key(v)), id));
        }
    }
    if cmp.differences.is_empty() {
        // Same variables, different order: listed only if the orders agree
        // once the variables a listed difference touched are left out.
        let keys = |vs: &[uefi_vars::variable::Variable]| -> Vec<_> {
            vs.iter()
                .map(|v| (v.guid, v.name.units().to_vec()))
                .collect()
        };
        cmp.differences.push((
            "variable order".to_string(),
            ctx.order_id(&keys(&ours), &keys(&theirs)),
        ));
    }
    cmp
}
