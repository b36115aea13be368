//! SVR metadata: header view, TLV walk of both sections, strict `MetadataRepr` parse, and the
//! re-emit invariant `parse(emit(parse(x))) == parse(x)`; then `open_metadata` with a fixed key.
#![no_main]

use fastpath::svr::{
    open_metadata, MetadataHeader, MetadataRepr, Section, TlvIter, TlvValue, BASE_LEN,
};
use libfuzzer_sys::fuzz_target;
use svr_crypto::MetadataKey;

fuzz_target!(|data: &[u8]| {
    let Ok(h) = MetadataHeader::new_checked(data) else {
        return;
    };
    assert!(h.header_len() >= BASE_LEN && h.metadata_len() <= data.len());
    let _ = (
        h.rest(),
        h.security_identifier(),
        h.is_false_positive_marker(),
    );
    for (bytes, section) in [
        (h.header_tlvs(), Section::Header),
        (h.payload_tlvs(), Section::Payload),
    ] {
        let mut used = 0;
        let mut ok = true;
        for tlv in TlvIter::new(bytes, section) {
            match tlv {
                Ok(t) => {
                    used += t.wire_len();
                    let _ = TlvValue::parse(t);
                }
                Err(_) => ok = false,
            }
        }
        // A walk without error ends exactly at the section end.
        assert!(!ok || used == bytes.len());
    }
    if let Ok(repr) = MetadataRepr::parse_cleartext(&h) {
        let len = repr.buffer_len();
        assert!(repr.header_len() <= h.header_len());
        assert!(len - repr.header_len() <= h.payload_len());
        let mut out = vec![0u8; len];
        assert_eq!(repr.emit(&mut out), Ok(len));
        let again = MetadataHeader::new_checked(&out[..]).expect("emitted header is valid");
        assert_eq!(MetadataRepr::parse_cleartext(&again), Ok(repr));
    }
    // Decryption path (almost always a padding error, but must never panic).
    let key = MetadataKey::new(1, &[7; 32], &[9; 48]);
    let _ = open_metadata(&key, &mut data.to_vec());
});
