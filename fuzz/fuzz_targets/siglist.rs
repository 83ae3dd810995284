//! EFI_SIGNATURE_LIST parsing, the APPEND merge and the edk2 format check
//! (`siglist`), with oracles:
//! - parse → encode → parse is the same lists (minus empty ones);
//! - a database that passes `check_format` encodes back byte for byte;
//! - `append(old, new)` keeps `old` as its prefix, contains every entry of
//!   both, is a valid database, and appending `new` again changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uefi_vars::siglist;

fn entries(lists: &[siglist::SignatureList<'_>]) -> Vec<(uefi_vars::guid::Guid, Vec<u8>)> {
    lists
        .iter()
        .flat_map(|l| l.entries.iter().map(move |e| (l.sig_type, e.to_vec())))
        .collect()
}

fuzz_target!(|input: (bool, u16, &[u8])| {
    let (is_pk, split, data) = input;
    let cut = usize::from(split).min(data.len());
    let (old, new) = data.split_at(cut);

    for d in [data, old, new] {
        let _ = siglist::x509_certificates(d);
        let format = siglist::check_format(d, is_pk);
        let Some(lists) = siglist::parse(d) else {
            assert!(format.is_err(), "check_format accepted an unparsable list");
            continue;
        };
        let encoded = siglist::encode(&lists);
        let reparsed = siglist::parse(&encoded).expect("encode output must parse");
        let non_empty: Vec<_> = lists
            .iter()
            .filter(|l| !l.entries.is_empty())
            .cloned()
            .collect();
        assert_eq!(reparsed, non_empty, "parse(encode(parse(x))) differs");
        if format.is_ok() {
            assert_eq!(encoded, d, "a well-formed database does not encode back");
        }
    }

    if let Some(merged) = siglist::append(old, new) {
        assert!(merged.starts_with(old), "append changed the old data");
        let m = siglist::parse(&merged).expect("append output must parse");
        let all = entries(&m);
        for e in entries(&siglist::parse(old).expect("old parsed"))
            .into_iter()
            .chain(entries(&siglist::parse(new).expect("new parsed")))
        {
            assert!(all.contains(&e), "append lost an entry");
        }
        assert_eq!(
            siglist::append(&merged, new).as_deref(),
            Some(&merged[..]),
            "append is not idempotent"
        );
    } else {
        assert!(
            siglist::parse(old).is_none() || siglist::parse(new).is_none(),
            "append refused two valid databases"
        );
    }
});
