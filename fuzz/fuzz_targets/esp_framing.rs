//! UDP 4500 demultiplexing, the ESP header and the ESP trailer: no panics, and what
//! parses writes back identically.
#![no_main]

use ipsec_server::wire::{
    classify_4500, parse_trailer, write_padding, EspHeader, Header, Udp4500, ESP_HEADER_LEN,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match classify_4500(data) {
        Ok(Udp4500::Esp(esp)) => {
            assert!(esp.len() >= ESP_HEADER_LEN);
            let header = EspHeader::parse(esp).expect("classify_4500 guarantees 8 octets");
            assert_ne!(header.spi, 0, "a zero SPI is the non-ESP marker");
            assert_eq!(header.to_bytes()[..], esp[..ESP_HEADER_LEN]);
            // Treat what follows the header as decrypted payload + trailer.
            check_trailer(&esp[ESP_HEADER_LEN..]);
        }
        Ok(Udp4500::Ike(ike)) => {
            assert_eq!(ike.len() + 4, data.len());
            let _ = Header::parse(ike);
        }
        Ok(Udp4500::Keepalive) => assert_eq!(data, [0xff]),
        Err(_) => assert!(data.len() < ESP_HEADER_LEN),
    }
    check_trailer(data);
});

fn check_trailer(plaintext: &[u8]) {
    if let Ok((payload_len, trailer)) = parse_trailer(plaintext) {
        let mut rebuilt = plaintext.to_vec();
        let end = write_padding(&mut rebuilt, payload_len, trailer).expect("it fitted before");
        assert_eq!(end, plaintext.len());
        assert_eq!(rebuilt, plaintext);
    }
}
