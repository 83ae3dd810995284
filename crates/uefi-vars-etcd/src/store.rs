//! [`EtcdStore`]: one VM's variable store in etcd, written incrementally,
//! every write a transaction fenced by ownership (README "Running a
//! fleet").
//!
//! Keys under `/PREFIX/VM/`:
//! - `store`: the store as of the last compaction, in QEMU's JSON format;
//! - `log/SEQ` (20 decimal digits): one change since then each, as a
//!   record of the file journal (persist/journal.rs), so a write costs the
//!   change; replayed in order onto `store` exactly as a journal is;
//! - `head`: the next sequence number and the writer's name; every write
//!   puts it, so its mod_revision is "the revision this writer last
//!   wrote", and its value tells a writer whether a write whose answer it
//!   lost was its own;
//! - `owner`: who may write, attached to that writer's lease.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, Identity,
    KeyValue, TlsOptions, Txn, TxnOp, TxnOpResponse,
};
use uefi_vars::persist::journal::{self, EntryRef, FileId};
use uefi_vars::persist::{json, non_volatile, Change, PersistError, Storage};
use uefi_vars::store::VarStore;
use uefi_vars::variable::Variable;

use crate::url::EtcdUrl;

/// Changes kept as log records before they are folded into `store`.
const COMPACT_AFTER: u64 = 64;
/// Bound on one request to the cluster.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between attempts while the cluster is unavailable.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// How the backend connects and owns.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EtcdOptions {
    /// Lease time-to-live of the ownership; a stopped or cut-off owner
    /// loses the store this long after its last keep-alive.
    pub lease_ttl: Duration,
    /// How long taking ownership waits for another owner's lease to go.
    pub takeover_wait: Duration,
    /// How long one write keeps retrying while the cluster is unavailable
    /// (an election, a member restarting) before it fails.
    pub write_deadline: Duration,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        EtcdOptions {
            lease_ttl: Duration::from_secs(10),
            takeover_wait: Duration::ZERO,
            write_deadline: Duration::from_secs(15),
        }
    }
}

/// An etcd failure the caller must see as such.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EtcdError {
    #[error("{store}: {action}: {source}")]
    Cluster {
        store: String,
        action: &'static str,
        #[source]
        source: Box<etcd_client::Error>,
    },
    #[error("{store}: {action}: the cluster did not answer within {waited:?}")]
    Unavailable {
        store: String,
        action: &'static str,
        waited: Duration,
    },
    #[error(
        "{store}: the store is owned by {owner} (a running `uefi-vars serve`); a write now \
         would be refused by its fencing or overwrite the VM's view: stop the VM first"
    )]
    Owned { store: String, owner: String },
    #[error("{store}: changed by someone else while this command ran; nothing was written, run it again")]
    Conflict { store: String },
    #[error("{store}: {problem}")]
    Corrupt { store: String, problem: String },
    #[error("{store}: {what}: {source}")]
    File {
        store: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{store}: cannot start the etcd client's runtime: {0}", store = .1)]
    Runtime(#[source] std::io::Error, String),
}

/// What the backend holds while it owns the store.
struct Ownership {
    lease: i64,
    token: String,
    /// mod_revision of the ownership key as this owner created it.
    rev: i64,
    /// Set by the keep-alive task when the cluster says the lease is gone.
    lost: Arc<AtomicBool>,
    keeper: tokio::task::JoinHandle<()>,
}

/// The keys of one store.
struct Keys {
    base: String,
    store: String,
    log: String,
    head: String,
    owner: String,
}

impl Keys {
    fn new(base: String) -> Keys {
        Keys {
            store: format!("{base}store"),
            log: format!("{base}log/"),
            head: format!("{base}head"),
            owner: format!("{base}owner"),
            base,
        }
    }

    fn log_key(&self, seq: u64) -> String {
        format!("{}{seq:020}", self.log)
    }
}

/// One VM's store in etcd. Without ownership (the CLI) it reads, and
/// writes whole stores only while nobody owns it; with ownership
/// ([`EtcdStore::own`], `serve`) every write is fenced.
pub struct EtcdStore {
    rt: tokio::runtime::Runtime,
    client: Client,
    label: String,
    keys: Keys,
    opts: EtcdOptions,
    /// mod_revision of `head` as last read or written (0: absent).
    head_rev: i64,
    next_seq: u64,
    /// Log records not yet folded into `store`.
    log_len: u64,
    owner: Option<Ownership>,
    /// This writer's name in `head` (the owner token, or one of its own
    /// for a CLI write).
    writer: String,
    fenced: bool,
}

/// What a write transaction found when its condition failed.
enum Refusal {
    Owned(String),
    Moved,
}

impl EtcdStore {
    /// Connects (without owning) to the store `url` names. `tls` adds to
    /// the URL's query.
    pub fn connect(url: &EtcdUrl, opts: EtcdOptions) -> Result<EtcdStore, EtcdError> {
        let label = url.label();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(1)
            .thread_name("uefi-vars-etcd")
            .enable_all()
            .build()
            .map_err(|e| EtcdError::Runtime(e, label.clone()))?;
        let connect = connect_options(url, &label)?;
        let endpoints = endpoint_urls(url, &label)?;
        let client = rt
            .block_on(async {
                tokio::time::timeout(
                    opts.write_deadline,
                    Client::connect(endpoints, Some(connect)),
                )
                .await
            })
            .map_err(|_| EtcdError::Unavailable {
                store: label.clone(),
                action: "connect",
                waited: opts.write_deadline,
            })?
            .map_err(|source| EtcdError::Cluster {
                store: label.clone(),
                action: "connect",
                source: Box::new(source),
            })?;
        Ok(EtcdStore {
            rt,
            client,
            keys: Keys::new(url.key_base()),
            label,
            opts,
            head_rev: 0,
            next_seq: 1,
            log_len: 0,
            owner: None,
            writer: owner_token(),
            fenced: false,
        })
    }

    /// The URL this store was opened with (without its query).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Runs one request with the per-request bound, retrying while the
    /// cluster is unavailable until the write deadline.
    fn retry<T, F, Fut>(&self, action: &'static str, mut f: F) -> Result<T, EtcdError>
    where
        F: FnMut(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        let start = Instant::now();
        let deadline = self.opts.write_deadline;
        self.rt.block_on(async {
            loop {
                let attempt = tokio::time::timeout(REQUEST_TIMEOUT, f(self.client.clone())).await;
                match attempt {
                    Ok(Ok(v)) => return Ok(v),
                    Ok(Err(e)) if !transient(&e) => {
                        return Err(EtcdError::Cluster {
                            store: self.label.clone(),
                            action,
                            source: Box::new(e),
                        })
                    }
                    _ if start.elapsed() >= deadline => {
                        return Err(EtcdError::Unavailable {
                            store: self.label.clone(),
                            action,
                            waited: deadline,
                        })
                    }
                    _ => tokio::time::sleep(RETRY_PAUSE).await,
                }
            }
        })
    }

    /// Who owns the store now (the ownership key's value), if anyone.
    pub fn current_owner(&self) -> Result<Option<String>, EtcdError> {
        let key = self.keys.owner.clone();
        let resp = self.retry("read the ownership key", |mut c| {
            let key = key.clone();
            async move { c.get(key, None).await }
        })?;
        Ok(resp
            .kvs()
            .first()
            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned()))
    }

    /// Reads the store: `store` with the log replayed, at one revision.
    fn read(&mut self) -> Result<Vec<Variable>, EtcdError> {
        let base = self.keys.base.clone();
        let resp = self.retry("read the store", |mut c| {
            let base = base.clone();
            async move { c.get(base, Some(GetOptions::new().with_prefix())).await }
        })?;
        let mut json_bytes: &[u8] = &[];
        let mut log: Vec<(u64, &[u8])> = Vec::new();
        self.head_rev = 0;
        self.next_seq = 1;
        for kv in resp.kvs() {
            let key = kv.key();
            if key == self.keys.store.as_bytes() {
                json_bytes = kv.value();
            } else if key == self.keys.head.as_bytes() {
                self.head_rev = kv.mod_revision();
                let seq = kv.value().split(|&b| b == b' ').next().unwrap_or_default();
                self.next_seq = self.parse_seq(seq)?;
            } else if let Some(seq) = key.strip_prefix(self.keys.log.as_bytes()) {
                log.push((self.parse_seq(seq)?, kv.value()));
            }
        }
        self.log_len = log.len() as u64;
        let mut journal_bytes = Vec::new();
        if let Some(&(first, _)) = log.first() {
            journal_bytes = journal::encode_header(first, FileId::of(json_bytes));
            for (_, record) in &log {
                journal_bytes.extend_from_slice(record);
            }
        }
        let replayed = journal::replay(json_bytes, &journal_bytes).map_err(|e| self.corrupt(e))?;
        if let Some(t) = replayed.torn {
            return Err(self.corrupt(format!("a log record is damaged: {}", t.reason)));
        }
        if replayed.next_seq > self.next_seq {
            return Err(self.corrupt("the log runs past the head key"));
        }
        Ok(replayed.vars)
    }

    fn parse_seq(&self, bytes: &[u8]) -> Result<u64, EtcdError> {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                self.corrupt(format!(
                    "bad sequence number {:?}",
                    String::from_utf8_lossy(bytes)
                ))
            })
    }

    fn corrupt(&self, problem: impl std::fmt::Display) -> EtcdError {
        EtcdError::Corrupt {
            store: self.label.clone(),
            problem: problem.to_string(),
        }
    }

    /// Whether the store exists (the last read found its head key).
    pub fn exists(&self) -> bool {
        self.head_rev != 0
    }

    /// The store's variables, in order.
    pub fn load_vars(&mut self) -> Result<Vec<Variable>, EtcdError> {
        self.read()
    }
}

/// Whether `e` may go away by itself (a member down, an election).
fn transient(e: &etcd_client::Error) -> bool {
    use etcd_client::Error as E;
    match e {
        E::GRpcStatus(s) => matches!(
            s.code(),
            tonic_code::Unavailable
                | tonic_code::DeadlineExceeded
                | tonic_code::Unknown
                | tonic_code::Internal
                | tonic_code::Aborted
                | tonic_code::Cancelled
        ),
        E::TransportError(_) | E::IoError(_) => true,
        _ => false,
    }
}

use tonic::Code as tonic_code;

fn read_pem(label: &str, what: &str, path: &std::path::Path) -> Result<Vec<u8>, EtcdError> {
    std::fs::read(path).map_err(|source| EtcdError::File {
        store: label.to_string(),
        what: format!("{what} {}", path.display()),
        source,
    })
}

fn connect_options(url: &EtcdUrl, label: &str) -> Result<ConnectOptions, EtcdError> {
    let mut opts = ConnectOptions::new()
        .with_timeout(REQUEST_TIMEOUT)
        .with_connect_timeout(REQUEST_TIMEOUT)
        .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2));
    let tls = &url.tls;
    if tls.enabled() {
        let mut t = TlsOptions::new().domain_name(url.first_host());
        if let Some(ca) = &tls.cacert {
            t = t.ca_certificate(Certificate::from_pem(read_pem(
                label,
                "CA certificate",
                ca,
            )?));
        }
        match (&tls.cert, &tls.key) {
            (Some(c), Some(k)) => {
                t = t.identity(Identity::from_pem(
                    read_pem(label, "client certificate", c)?,
                    read_pem(label, "client key", k)?,
                ));
            }
            (None, None) => {}
            _ => {
                return Err(EtcdError::File {
                    store: label.to_string(),
                    what: "client certificate".into(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "--etcd-cert and --etcd-key go together",
                    ),
                })
            }
        }
        opts = opts.with_tls(t);
    }
    Ok(opts)
}

/// `http(s)://ADDR:PORT` for every resolved endpoint.
fn endpoint_urls(url: &EtcdUrl, label: &str) -> Result<Vec<String>, EtcdError> {
    let scheme = if url.tls.enabled() { "https" } else { "http" };
    let addrs = url.resolve().map_err(|e| EtcdError::Corrupt {
        store: label.to_string(),
        problem: e.to_string(),
    })?;
    Ok(addrs.iter().map(|a| format!("{scheme}://{a}")).collect())
}

/// A unique name for this owner: host, process, and randomness, so that
/// two services on one host (or a restarted one) never share it.
fn owner_token() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into());
    let nonce = std::collections::hash_map::RandomState::new();
    let mut h = std::hash::BuildHasher::build_hasher(&nonce);
    std::hash::Hasher::write_u128(&mut h, Instant::now().elapsed().as_nanos());
    let n = std::hash::Hasher::finish(&h);
    format!("{host}/pid-{}/{n:016x}", std::process::id())
}

impl EtcdStore {
    /// Takes ownership: a lease, and the ownership key created only if
    /// absent, in one transaction; waits up to `takeover_wait` for another
    /// owner's key to go (its clean stop, or its lease expiring). Then
    /// keeps the lease alive from the backend's runtime.
    pub fn own(&mut self) -> Result<(), EtcdError> {
        let ttl = i64::try_from(self.opts.lease_ttl.as_secs().max(1)).unwrap_or(10);
        let lease = self
            .retry("grant a lease", |mut c| async move {
                c.lease_grant(ttl, None).await
            })?
            .id();
        let token = self.writer.clone();
        // Kept alive from now on: the wait below may outlast the TTL.
        let lost = Arc::new(AtomicBool::new(false));
        let keeper = self.rt.spawn(keep_alive(
            self.client.clone(),
            lease,
            self.opts.lease_ttl / 3,
            lost.clone(),
        ));
        let start = Instant::now();
        let rev = loop {
            let resp = self.try_take(lease, &token)?;
            if resp.succeeded() {
                break resp.header().map_or(0, |h| h.revision());
            }
            if start.elapsed() >= self.opts.takeover_wait {
                let owner = first_kv(&resp)
                    .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
                    .unwrap_or_default();
                keeper.abort();
                let _ = self.retry("revoke the unused lease", |mut c| async move {
                    c.lease_revoke(lease).await
                });
                return Err(EtcdError::Owned {
                    store: self.label.clone(),
                    owner,
                });
            }
            self.rt
                .block_on(async { tokio::time::sleep(RETRY_PAUSE).await });
        };
        self.owner = Some(Ownership {
            lease,
            token,
            rev,
            lost,
            keeper,
        });
        // Writes are conditioned on the head as of now.
        self.read()?;
        Ok(())
    }

    /// One attempt: creates the ownership key with `lease` if absent; the
    /// answer holds the current owner's key otherwise.
    fn try_take(&self, lease: i64, token: &str) -> Result<etcd_client::TxnResponse, EtcdError> {
        let txn = Txn::new()
            .when([Compare::create_revision(
                self.keys.owner.clone(),
                CompareOp::Equal,
                0,
            )])
            .and_then([TxnOp::put(
                self.keys.owner.clone(),
                token,
                Some(etcd_client::PutOptions::new().with_lease(lease)),
            )])
            .or_else([TxnOp::get(self.keys.owner.clone(), None)]);
        self.retry("take ownership", |mut c| {
            let txn = txn.clone();
            async move { c.txn(txn).await }
        })
    }

    /// This owner's name (the ownership key's value), while it owns.
    pub fn owner_token(&self) -> Option<&str> {
        self.owner.as_ref().map(|o| o.token.as_str())
    }

    /// Gives ownership up (clean stop): the lease is revoked, which
    /// deletes the ownership key. A fenced store has nothing to give up.
    pub fn release(&mut self) -> Result<(), EtcdError> {
        let Some(o) = self.owner.take() else {
            return Ok(());
        };
        o.keeper.abort();
        let lease = o.lease;
        self.retry("release ownership", |mut c| async move {
            c.lease_revoke(lease).await
        })?;
        Ok(())
    }

    /// The condition every write carries: still the owner (the ownership
    /// key is the one this owner created), or nobody owns the store (a CLI
    /// write); and `head` is where this writer last left it.
    fn fence(&self) -> Vec<Compare> {
        let mut when = vec![Compare::mod_revision(
            self.keys.head.clone(),
            CompareOp::Equal,
            self.head_rev,
        )];
        match &self.owner {
            Some(o) => {
                when.push(Compare::value(
                    self.keys.owner.clone(),
                    CompareOp::Equal,
                    o.token.clone(),
                ));
                when.push(Compare::mod_revision(
                    self.keys.owner.clone(),
                    CompareOp::Equal,
                    o.rev,
                ));
            }
            None => when.push(Compare::create_revision(
                self.keys.owner.clone(),
                CompareOp::Equal,
                0,
            )),
        }
        when
    }

    /// Runs a write `ops` under the fence, putting `head` to `new_head`
    /// and this writer's name. Retries while the cluster is unavailable; an attempt that
    /// was applied but whose answer was lost shows as `head` already at
    /// `new_head` with the ownership unchanged (nobody else can write
    /// while this one owns).
    fn write(&mut self, mut ops: Vec<TxnOp>, new_head: u64) -> Result<(), WriteError> {
        let head_value = format!("{new_head} {}", self.writer);
        ops.push(TxnOp::put(self.keys.head.clone(), head_value.clone(), None));
        let lease_gone = self
            .owner
            .as_ref()
            .is_some_and(|o| o.lost.load(Ordering::SeqCst));
        if self.fenced || lease_gone {
            return Err(WriteError::Refused(Refusal::Moved));
        }
        let txn = Txn::new().when(self.fence()).and_then(ops).or_else([
            TxnOp::get(self.keys.owner.clone(), None),
            TxnOp::get(self.keys.head.clone(), None),
        ]);
        let resp = self
            .retry("write", |mut c| {
                let txn = txn.clone();
                async move { c.txn(txn).await }
            })
            .map_err(WriteError::Etcd)?;
        if resp.succeeded() {
            self.head_rev = resp.header().map_or(0, |h| h.revision());
            self.next_seq = new_head;
            return Ok(());
        }
        let found = resp.op_responses();
        let kv = |i: usize| match found.get(i) {
            Some(TxnOpResponse::Get(g)) => g.kvs().first().cloned(),
            _ => None,
        };
        let (owner, head) = (kv(0), kv(1));
        let still_ours = match (&self.owner, &owner) {
            (Some(o), Some(kv)) => kv.value() == o.token.as_bytes() && kv.mod_revision() == o.rev,
            // A CLI write: still nobody owns the store.
            (None, None) => true,
            _ => false,
        };
        let head_is_ours = head
            .as_ref()
            .is_some_and(|kv| kv.value() == head_value.as_bytes());
        if still_ours && head_is_ours {
            self.head_rev = head.map_or(0, |kv| kv.mod_revision());
            self.next_seq = new_head;
            return Ok(());
        }
        match owner {
            Some(kv) if !still_ours => Err(WriteError::Refused(Refusal::Owned(
                String::from_utf8_lossy(kv.value()).into_owned(),
            ))),
            _ => Err(WriteError::Refused(Refusal::Moved)),
        }
    }

    /// Replaces the whole store (compaction; a CLI write): `store` holds
    /// `vars`, the log is emptied.
    fn write_whole(&mut self, vars: &[&Variable]) -> Result<(), WriteError> {
        let text = json::encode(&non_volatile(vars)).map_err(WriteError::Format)?;
        // A new head value, so that an applied attempt whose answer was
        // lost is recognised; sequence numbers stay increasing.
        let new_head = self.next_seq.saturating_add(1);
        let ops = vec![
            TxnOp::put(self.keys.store.clone(), text, None),
            TxnOp::delete(
                self.keys.log.clone(),
                Some(DeleteOptions::new().with_prefix()),
            ),
        ];
        self.write(ops, new_head)?;
        self.log_len = 0;
        Ok(())
    }

    /// A CLI write: the whole store, only while nobody owns it and nobody
    /// wrote since it was read.
    pub fn replace(&mut self, vars: &[&Variable]) -> Result<(), EtcdError> {
        self.write_whole(vars).map_err(|e| self.write_error(e))
    }

    fn write_error(&self, e: WriteError) -> EtcdError {
        match e {
            WriteError::Etcd(e) => e,
            WriteError::Format(e) => self.corrupt(e),
            WriteError::Refused(Refusal::Owned(owner)) => EtcdError::Owned {
                store: self.label.clone(),
                owner,
            },
            WriteError::Refused(Refusal::Moved) => EtcdError::Conflict {
                store: self.label.clone(),
            },
        }
    }

    /// The error a failed write of the owning service gives: refused
    /// writes fence the backend for good.
    fn persist_error(&mut self, e: WriteError) -> PersistError {
        match e {
            WriteError::Refused(r) => {
                self.fenced = true;
                if let Some(o) = self.owner.take() {
                    o.keeper.abort();
                }
                PersistError::Fenced {
                    store: self.label.clone(),
                    owner: match r {
                        Refusal::Owned(o) => Some(o),
                        Refusal::Moved => None,
                    },
                }
            }
            WriteError::Format(source) => PersistError::Format {
                file: Some(self.label.clone().into()),
                source,
            },
            WriteError::Etcd(e) => PersistError::Remote {
                store: self.label.clone(),
                action: "write".into(),
                source: Box::new(e),
            },
        }
    }

    /// Whether this backend was fenced: it writes nothing more.
    pub fn is_fenced(&self) -> bool {
        self.fenced
    }
}

/// A write that did not happen.
enum WriteError {
    Etcd(EtcdError),
    Format(json::FormatError),
    Refused(Refusal),
}

fn first_kv(resp: &etcd_client::TxnResponse) -> Option<KeyValue> {
    resp.op_responses().into_iter().find_map(|r| match r {
        TxnOpResponse::Get(g) => g.kvs().first().cloned(),
        _ => None,
    })
}

/// Renews the lease every `every` until the cluster says it is gone. A
/// missed renewal (cluster unavailable) is retried at the next tick; the
/// fence, not this task, is what keeps a late owner from writing.
async fn keep_alive(client: Client, lease: i64, every: Duration, lost: Arc<AtomicBool>) {
    let every = every.max(Duration::from_millis(200));
    loop {
        tokio::time::sleep(every).await;
        let mut c = client.clone();
        let once = async {
            let (mut keeper, mut stream) = c.lease_keep_alive(lease).await?;
            keeper.keep_alive().await?;
            stream.message().await
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, once).await {
            Ok(Ok(Some(r))) if r.ttl() <= 0 => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            _ => {}
        }
    }
}

impl Storage for EtcdStore {
    fn load(&mut self) -> Result<Vec<Variable>, PersistError> {
        self.read().map_err(|e| PersistError::Remote {
            store: self.label.clone(),
            action: "read".into(),
            source: Box::new(e),
        })
    }

    fn save(&mut self, vars: &[&Variable]) -> Result<(), PersistError> {
        self.write_whole(vars).map_err(|e| self.persist_error(e))
    }

    fn apply(&mut self, change: Change<'_>, before: &VarStore) -> Result<(), PersistError> {
        if self.log_len >= COMPACT_AFTER {
            return self.save(&change.merged(before));
        }
        let seq = self.next_seq;
        let entry = match change {
            Change::Put(v) => EntryRef::Put(v),
            Change::Delete(k) => EntryRef::Delete(k),
            // A kind of change this backend does not know: the whole store.
            _ => return self.save(&change.merged(before)),
        };
        let record = journal::encode_record(seq, entry).map_err(|source| PersistError::Format {
            file: Some(self.label.clone().into()),
            source,
        })?;
        let new_head = seq.saturating_add(1);
        let ops = vec![TxnOp::put(self.keys.log_key(seq), record, None)];
        self.write(ops, new_head)
            .map_err(|e| self.persist_error(e))?;
        self.log_len = self.log_len.saturating_add(1);
        Ok(())
    }

    fn pending(&self) -> bool {
        self.log_len > 0 && !self.fenced
    }
}

impl Drop for EtcdStore {
    /// Ownership ends with the backend (clean stop). A process that dies
    /// instead loses it when its lease expires.
    fn drop(&mut self) {
        let _ = self.release();
    }
}
