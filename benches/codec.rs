//! Codec throughput on the real input: strongSwan 5.9.8's IKE_SA_INIT request
//! (`tests/data/strongswan-ike-sa-init.bin`), parsed and emitted whole.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ipsec_server::wire::{classify_4500, Message};

const CAPTURE: &[u8] = include_bytes!("../tests/data/strongswan-ike-sa-init.bin");

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("ike_sa_init");
    group.throughput(Throughput::Bytes(CAPTURE.len() as u64));
    group.bench_function("parse", |b| {
        b.iter(|| Message::parse(black_box(CAPTURE)).expect("capture parses"))
    });
    let msg = Message::parse(CAPTURE).expect("capture parses");
    group.bench_function("emit", |b| {
        b.iter(|| black_box(&msg).emit().expect("capture emits"))
    });
    group.bench_function("parse_emit", |b| {
        b.iter(|| {
            Message::parse(black_box(CAPTURE))
                .expect("capture parses")
                .emit()
                .expect("capture emits")
        })
    });
    group.finish();

    let mut datagram = vec![0x00; 4];
    datagram.extend_from_slice(CAPTURE);
    c.bench_function("classify_4500", |b| {
        b.iter(|| classify_4500(black_box(&datagram)))
    });
}

criterion_group!(benches, codec);
criterion_main!(benches);
