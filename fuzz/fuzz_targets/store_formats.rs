//! The edk2 flash image and AWS uefi-data readers
//! (`persist::formats::{edk2, aws}`) on arbitrary bytes: no panic, and
//! whatever decodes re-encodes to something that decodes to the same
//! variables (an image rewritten into itself, a blob encoded again).
#![no_main]

use libfuzzer_sys::fuzz_target;
use uefi_vars::persist::formats::{self, aws, edk2};
use uefi_vars::variable::Variable;

fuzz_target!(|data: &[u8]| {
    let _ = formats::detect(data);
    if let Ok(store) = edk2::decode(data) {
        let refs: Vec<&Variable> = store.variables.iter().collect();
        if store.geometry.is_some() && store.variables.iter().all(|v| v.digest.is_none()) {
            if let Ok(image) = edk2::encode_into(data, &refs) {
                let again = edk2::decode(&image).expect("a rewritten image must decode");
                assert_eq!(
                    again.variables, store.variables,
                    "rewrite changed the variables"
                );
                assert!(again.skipped.is_empty(), "rewrite left obsolete entries");
            }
        }
    }
    if let Ok(vars) = aws::decode(data) {
        let refs: Vec<&Variable> = vars.iter().collect();
        let text = aws::encode(&refs).expect("a decoded blob must encode");
        let again = aws::decode(text.as_bytes()).expect("an encoded blob must decode");
        assert_eq!(again, vars, "decode(encode(x)) != x");
    }
});
