//! Shamir secret sharing as sops does it (its vendored HashiCorp Vault code): GF(2^8)
//! with the AES polynomial 0x11B, share *i* evaluated at x = i + 1, and the x value
//! appended as the share's last byte. Field arithmetic is branch-free and table-free, so
//! its timing does not depend on the secret.

use zeroize::Zeroizing;

use crate::error::SopsError;
use crate::primitives;
use crate::secret::SecretBytes;

/// Multiplication in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1, in constant time.
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut product = 0u8;
    for _ in 0..8 {
        product ^= a & 0u8.wrapping_sub(b & 1);
        let carry = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & carry);
        b >>= 1;
    }
    product
}

/// The multiplicative inverse (a^254); 0 maps to 0.
fn inv(a: u8) -> u8 {
    let mut result = 1u8;
    let mut base = a;
    let mut exp = 254u8;
    for _ in 0..8 {
        let factor = if exp & 1 == 1 { base } else { 1 };
        result = mul(result, factor);
        base = mul(base, base);
        exp >>= 1;
    }
    result
}

/// Splits `secret` into `parts` shares of which any `threshold` recover it.
pub fn split(secret: &[u8], parts: usize, threshold: usize) -> Result<Vec<SecretBytes>, SopsError> {
    if threshold < 2 || threshold > parts || parts > 255 {
        return Err(SopsError::Shamir(format!(
            "cannot split into {parts} parts with threshold {threshold}: need 2 <= threshold <= parts <= 255"
        )));
    }
    let mut shares: Vec<Zeroizing<Vec<u8>>> = (0..parts)
        .map(|_| Zeroizing::new(Vec::with_capacity(secret.len() + 1)))
        .collect();
    let mut coefficients = Zeroizing::new(vec![0u8; threshold - 1]);
    for &byte in secret {
        primitives::fill_random(&mut coefficients);
        for (i, share) in shares.iter_mut().enumerate() {
            let x = (i + 1) as u8;
            // Horner: byte + c1 x + c2 x^2 + ...
            let mut y = 0u8;
            for &c in coefficients.iter().rev() {
                y = mul(y, x) ^ c;
            }
            share.push(mul(y, x) ^ byte);
        }
    }
    Ok(shares
        .into_iter()
        .enumerate()
        .map(|(i, mut share)| {
            share.push((i + 1) as u8);
            SecretBytes::new(std::mem::take(&mut *share))
        })
        .collect())
}

/// Recovers the secret from shares (each ending in its x byte) by interpolating at 0.
pub fn combine(shares: &[SecretBytes]) -> Result<SecretBytes, SopsError> {
    let len = shares.first().map(|s| s.expose().len()).unwrap_or(0);
    if shares.len() < 2 || len < 2 || shares.iter().any(|s| s.expose().len() != len) {
        return Err(SopsError::Shamir(
            "need at least two shares of the same length".into(),
        ));
    }
    let xs: Vec<u8> = shares.iter().map(|s| s.expose()[len - 1]).collect();
    for (i, x) in xs.iter().enumerate() {
        if *x == 0 || xs[..i].contains(x) {
            return Err(SopsError::Shamir("duplicate or zero share index".into()));
        }
    }
    let mut secret = Zeroizing::new(vec![0u8; len - 1]);
    for (i, share) in shares.iter().enumerate() {
        // Lagrange basis polynomial i at x = 0: prod_j x_j / (x_j - x_i).
        let mut basis = 1u8;
        for (j, &xj) in xs.iter().enumerate() {
            if i != j {
                basis = mul(basis, mul(xj, inv(xj ^ xs[i])));
            }
        }
        for (out, &y) in secret.iter_mut().zip(share.expose()) {
            *out ^= mul(y, basis);
        }
    }
    Ok(SecretBytes::new(std::mem::take(&mut *secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_arithmetic() {
        assert_eq!(mul(0x57, 0x83), 0xc1, "FIPS-197 example");
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1);
        }
    }

    #[test]
    fn any_threshold_subset_recovers_the_secret() {
        let secret: Vec<u8> = (0..32).collect();
        let shares = split(&secret, 3, 2).unwrap();
        assert!(shares.iter().all(|s| s.expose().len() == 33));
        assert_eq!(shares[2].expose()[32], 3);
        for pair in [[0, 1], [0, 2], [1, 2]] {
            let subset: Vec<SecretBytes> = pair
                .iter()
                .map(|&i| SecretBytes::new(shares[i].expose().to_vec()))
                .collect();
            assert_eq!(combine(&subset).unwrap().expose(), secret.as_slice());
        }
        assert!(split(&secret, 2, 3).is_err());
        assert!(split(&secret, 3, 1).is_err());
    }
}
