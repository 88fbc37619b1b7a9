//! The fuzz seed corpora (`fuzz/seeds/<target>/`) are made from the test vectors; this test
//! fails when they are out of date. `WRITE_FUZZ_SEEDS=1 cargo test --lib wire::tests::seeds`
//! rewrites them.

use std::fs;
use std::path::Path;

use super::super::*;
use super::payloads::{message_with, vectors};
use super::{CAPTURE, CAPTURE_MODP2048};

#[test]
fn fuzz_seeds_match_the_vectors() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");

    let mut ike: Vec<(String, Vec<u8>)> = vec![
        ("capture-modp1024".into(), CAPTURE.to_vec()),
        ("capture-modp2048".into(), CAPTURE_MODP2048.to_vec()),
    ];
    for (i, vector) in vectors().into_iter().enumerate() {
        // As a whole message, and as a bare chain behind its first type (the SK path).
        let mut chain = vec![vector.payload.payload_type().0];
        chain.extend_from_slice(&vector.bytes);
        ike.push((format!("chain-{i:02}"), chain));
        ike.push((
            format!("message-{i:02}"),
            message_with(vec![vector.payload]).emit().unwrap(),
        ));
    }
    write(&root.join("ike_message"), &ike);

    let esp_packet = {
        let mut packet = EspHeader {
            spi: 0xc1c2_c3c4,
            seq: 1,
        }
        .to_bytes()
        .to_vec();
        let inner = [0x45, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x40, 0x01];
        packet.extend_from_slice(&inner);
        let trailer = EspTrailer::for_payload(inner.len(), 16, NEXT_HEADER_IPV4);
        packet.resize(packet.len() + usize::from(trailer.pad_len) + 2, 0);
        let end = write_padding(&mut packet[ESP_HEADER_LEN..], inner.len(), trailer).unwrap();
        assert_eq!(end + ESP_HEADER_LEN, packet.len());
        packet
    };
    let esp = vec![
        ("keepalive".to_string(), vec![NAT_KEEPALIVE]),
        ("ike-over-4500".to_string(), with_non_esp_marker(CAPTURE)),
        ("esp-ipv4".to_string(), esp_packet),
        ("trailer-max-padding".to_string(), {
            let mut plain = vec![0x00; 257];
            write_padding(
                &mut plain,
                0,
                EspTrailer {
                    pad_len: 0xff,
                    next_header: NEXT_HEADER_NONE,
                },
            )
            .unwrap();
            plain
        }),
    ];
    write(&root.join("esp_framing"), &esp);
}

fn write(dir: &Path, seeds: &[(String, Vec<u8>)]) {
    let rewrite = std::env::var("WRITE_FUZZ_SEEDS").is_ok_and(|v| v == "1");
    if rewrite {
        fs::create_dir_all(dir).unwrap();
    }
    for (name, bytes) in seeds {
        let path = dir.join(format!("{name}.bin"));
        if rewrite {
            fs::write(&path, bytes).unwrap();
        } else {
            let on_disk = fs::read(&path).unwrap_or_default();
            assert_eq!(
                &on_disk,
                bytes,
                "{} is stale: rerun with WRITE_FUZZ_SEEDS=1",
                path.display()
            );
        }
    }
}
