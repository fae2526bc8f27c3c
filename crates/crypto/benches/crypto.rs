//! Per-item costs of the two wire formats. Run with `cargo bench -p gitseal-crypto`;
//! results are reported in `docs/performance.md`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gitseal_crypto::DataKey;
use gitseal_crypto::sealed::{Keyring, PrivateKey, Scope, seal};
use gitseal_crypto::sops::{MacHasher, ValueCipher, ValueType, aad};
use std::hint::black_box;

fn sealed_secrets(c: &mut Criterion) {
    let key = PrivateKey::generate(4096).expect("RSA-4096 key generation");
    let public = key.public_key();
    let label = Scope::Strict.label("prod", "db-credentials");
    let value = seal(&public, &label, b"correct horse battery staple").unwrap();
    let keyring = Keyring::new(vec![key]);

    let mut group = c.benchmark_group("sealed-secrets/rsa-4096");
    group.throughput(Throughput::Elements(1));
    group.bench_function("seal item (28 bytes)", |b| {
        b.iter(|| {
            seal(
                &public,
                black_box(&label),
                black_box(b"correct horse battery staple"),
            )
            .unwrap()
        })
    });
    group.bench_function("unseal item (28 bytes)", |b| {
        b.iter(|| {
            keyring
                .unseal(black_box(&label), black_box(&value))
                .unwrap()
        })
    });
    group.finish();
}

fn sops_values(c: &mut Criterion) {
    let cipher = ValueCipher::new(&DataKey::generate());
    let path = aad(["app", "database", "password"]);
    let plaintext = [b'x'; 32];
    let encrypted = cipher.encrypt(&plaintext, ValueType::Str, &path);

    let mut group = c.benchmark_group("sops/value");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encrypt 32-byte value", |b| {
        b.iter(|| cipher.encrypt(black_box(&plaintext), ValueType::Str, black_box(&path)))
    });
    let iv = [7u8; 32];
    group.bench_function("encrypt 32-byte value, given IV", |b| {
        b.iter(|| {
            cipher.encrypt_with_iv(black_box(&plaintext), ValueType::Str, black_box(&path), &iv)
        })
    });
    group.bench_function("decrypt 32-byte value", |b| {
        b.iter(|| {
            cipher
                .decrypt(black_box(&encrypted), black_box(&path))
                .unwrap()
        })
    });
    group.bench_function("MAC 1000 32-byte values", |b| {
        b.iter(|| {
            let mut mac = MacHasher::new(false);
            for _ in 0..1000 {
                mac.update(black_box(&plaintext));
            }
            mac.finish()
        })
    });
    group.finish();
}

criterion_group!(benches, sealed_secrets, sops_values);
criterion_main!(benches);
