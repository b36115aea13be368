//! The TLV walker and typed values on arbitrary sections. The first byte picks the section
//! (even: header, odd: payload). Invariants: a walk yields at most one error and then ends;
//! an error-free walk covers the section exactly; every value that parses re-emits to the same
//! bytes.
#![no_main]

use fastpath::svr::{Section, TlvIter, TlvValue, TlvWriter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, bytes)) = data.split_first() else {
        return;
    };
    let section = if sel & 1 == 0 {
        Section::Header
    } else {
        Section::Payload
    };
    let mut used = 0;
    let mut errors = 0;
    let mut out = vec![0u8; bytes.len()];
    for tlv in TlvIter::new(bytes, section) {
        assert_eq!(errors, 0, "the walk ends after an error");
        let t = match tlv {
            Ok(t) => t,
            Err(_) => {
                errors += 1;
                continue;
            }
        };
        let raw = &bytes[used..used + t.wire_len()];
        used += t.wire_len();
        if let Ok(v) = TlvValue::parse(t) {
            assert_eq!(v.wire_len(), t.wire_len());
            let mut w = TlvWriter::new(&mut out);
            v.write(&mut w).expect("a parsed value re-emits");
            let n = w.len();
            // Reserved bits (fragment flag bit 0, modify request bits 2-3) are not kept.
            let lossy = matches!(v, TlvValue::Fragment(_) | TlvValue::ModifyRequest(_));
            if !lossy {
                assert_eq!(&out[..n], raw);
            }
        }
    }
    assert!(errors == 1 || used == bytes.len());
});
