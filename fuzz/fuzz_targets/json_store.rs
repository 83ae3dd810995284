//! The JSON store loader (`persist::json::decode`) on arbitrary bytes, with
//! the round-trip oracle: whatever decodes must encode, the encoding must
//! decode to the same variables, and encoding again gives the same bytes.
//! A store that decodes is also loaded into a service (`Service::open` and
//! `Service::new`), which must enumerate it completely.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uefi_vars::persist::{json, MemoryStorage};
use uefi_vars::variable::Variable;
use uefi_vars::{Config, Service};
use uefi_vars_fuzz::check_enumeration;

fuzz_target!(|data: &[u8]| {
    let Ok(vars) = json::decode(data) else {
        return;
    };
    let refs: Vec<&Variable> = vars.iter().collect();
    let text = json::encode(&refs).expect("a decoded store must encode");
    let again = json::decode(text.as_bytes()).expect("an encoded store must decode");
    assert_eq!(again, vars, "decode(encode(x)) != x");
    let refs2: Vec<&Variable> = again.iter().collect();
    assert_eq!(
        json::encode(&refs2).expect("encode"),
        text,
        "encoding is not stable"
    );

    // Host-side load without reset: every variable is there, in file order.
    let svc = Service::open(
        Config::default(),
        Box::new(MemoryStorage::from_text(text.clone())),
    )
    .expect("a decodable store must load");
    let loaded: Vec<&Variable> = svc.store().iter().collect();
    assert_eq!(loaded, refs, "Service::open changed the variables");
    // A boot on it: the machine reset adds the Secure Boot state and the
    // guest can walk everything visible.
    if let Ok(mut svc) = Service::new(Config::default(), Box::new(MemoryStorage::from_text(text))) {
        check_enumeration(&mut svc);
    }
});
