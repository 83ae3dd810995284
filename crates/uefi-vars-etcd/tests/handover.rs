//! Migration hand-over on an etcd store (README "Running a fleet"): the
//! source stops writing, the target takes ownership with a bounded wait
//! and restores the snapshot, and the store then holds the guest's view.
//! Real etcd members (uefi_vars_etcd::testing).

use std::time::{Duration, Instant};

use uefi_vars::guid::Guid;
use uefi_vars::name::VarName;
use uefi_vars::persist::Storage;
use uefi_vars::variable::Variable;
use uefi_vars::{Config, EfiStatus, Service};
use uefi_vars_etcd::testing::Cluster;
use uefi_vars_etcd::{EtcdError, EtcdOptions, EtcdStore, EtcdUrl};

fn guid() -> Guid {
    "0f1e2d3c-4b5a-4697-8877-665544332211".parse().unwrap()
}

fn options(wait: Duration) -> EtcdOptions {
    let mut o = EtcdOptions::default();
    o.lease_ttl = Duration::from_secs(2);
    o.takeover_wait = wait;
    o
}

fn owned(url: &EtcdUrl, wait: Duration) -> Result<EtcdStore, EtcdError> {
    let mut s = EtcdStore::connect(url, options(wait))?;
    s.own()?;
    Ok(s)
}

fn in_etcd(url: &EtcdUrl) -> (Vec<Variable>, Option<String>) {
    let mut s = EtcdStore::connect(url, EtcdOptions::default()).unwrap();
    (s.load_vars().unwrap(), s.current_owner().unwrap())
}

fn non_volatile(svc: &Service) -> Vec<Variable> {
    svc.store()
        .iter()
        .filter(|v| v.is_non_volatile())
        .cloned()
        .collect()
}

#[test]
fn hand_over_source_stops_target_owns_with_a_bounded_wait_and_restores_the_snapshot() {
    let cluster = Cluster::start(1);
    let url = EtcdUrl::parse(&cluster.url("migrating")).unwrap();
    let mut src = Service::new(
        Config::default(),
        Box::new(owned(&url, Duration::ZERO).unwrap()),
    )
    .unwrap();
    for i in 0..40u32 {
        let name = VarName::from(format!("Mig{i}").as_str());
        let status = src.set_variable(guid(), name, 7, &i.to_le_bytes());
        assert_eq!(status, EfiStatus::SUCCESS);
    }
    // A volatile variable lives only in the snapshot.
    let status = src.set_variable(guid(), VarName::from("MigVolatile"), 6, b"v");
    assert_eq!(status, EfiStatus::SUCCESS);

    // While the source owns the store, the target's wait is bounded.
    let t = Instant::now();
    let err = owned(&url, Duration::from_millis(800)).err().unwrap();
    assert!(matches!(err, EtcdError::Owned { .. }), "{err}");
    assert!(
        t.elapsed() >= Duration::from_millis(800),
        "{:?}",
        t.elapsed()
    );

    // Final phase: the source stops writing (snapshot, then its clean stop
    // releases the store); the target, already waiting, takes it.
    let blob = src.snapshot();
    let source_view = non_volatile(&src);
    let target = std::thread::spawn({
        let url = url.clone();
        move || {
            let t = Instant::now();
            (owned(&url, Duration::from_secs(10)).unwrap(), t.elapsed())
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    drop(src);
    let (store, waited) = target.join().unwrap();
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    let owner = store.owner_token().unwrap().to_string();
    let mut dst = Service::restore(Config::default(), Box::new(store), &blob).unwrap();
    assert!(dst.take_errors().is_empty());
    // The guest's view (volatile variable included) is the source's, and
    // the store in etcd is its non-volatile part, owned by the target.
    assert!(dst
        .store()
        .iter()
        .any(|v| v.name == VarName::from("MigVolatile")));
    assert_eq!(non_volatile(&dst), source_view);
    let (vars, now) = in_etcd(&url);
    assert_eq!(vars, source_view);
    assert_eq!(now.as_deref(), Some(owner.as_str()));
    // The target writes on.
    let status = dst.set_variable(guid(), VarName::from("AfterMigration"), 7, b"x");
    assert_eq!(status, EfiStatus::SUCCESS);
    assert_eq!(in_etcd(&url).0, non_volatile(&dst));
}

#[test]
fn a_write_whose_condition_fails_is_not_made_and_fences_the_backend() {
    let cluster = Cluster::start(1);
    let url = EtcdUrl::parse(&cluster.url("fenced")).unwrap();
    let mut a = owned(&url, Duration::ZERO).unwrap();
    let v = Variable::new(guid(), VarName::from("A"), 7, vec![1]);
    a.save(&[&v]).unwrap();
    // Another writer's view: A's lease revoked behind its back (as an
    // operator's `etcdctl lease revoke` would), B takes over and writes.
    let mut peek = EtcdStore::connect(&url, EtcdOptions::default()).unwrap();
    assert!(peek.current_owner().unwrap().is_some());
    let out = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args([
            "--endpoints",
            &cluster.endpoints(),
            "del",
            "/uefi-vars/fenced/owner",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut b = owned(&url, Duration::ZERO).unwrap();
    let w = Variable::new(guid(), VarName::from("B"), 7, vec![2]);
    b.save(&[&w]).unwrap();
    // A's next write is refused, and so is every later one.
    let e = a.save(&[&v]).unwrap_err();
    assert!(e.is_fenced(), "{e}");
    assert!(a.is_fenced());
    let e = a.save(&[&v]).unwrap_err();
    assert!(e.is_fenced(), "{e}");
    assert_eq!(peek.load_vars().unwrap(), vec![w]);
}
