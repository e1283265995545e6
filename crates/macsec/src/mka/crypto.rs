//! MKA cryptography: AES-CMAC, the 802.1X key derivation function and key hierarchy,
//! the MKPDU ICV, SAK generation, AES Key Wrap of the SAK, and the XPN Salt and SSCI.
//!
//! Everything here is a pure function. Keys come in and go out as [`SecretKey`]; every
//! intermediate buffer that holds key material is a [`Zeroizing`] buffer.
//!
//! | item | definition | source |
//! |---|---|---|
//! | KDF | `K_i = CMAC(KDK, i ‖ Label ‖ 0x00 ‖ Context ‖ L)`, NIST SP 800-108 counter mode | 802.1X-2010 6.2.1 |
//! | CAK, CKN from EAP | KDF(MSK, "IEEE8021 EAP CAK"/"IEEE8021 EAP CKN", …) | 802.1X-2010 6.2.2 |
//! | ICK, KEK | KDF(CAK, "IEEE8021 ICK"/"IEEE8021 KEK", CKN[0..16], len(CAK)) | 802.1X-2010 6.2.3, 9.3.3 |
//! | ICV | AES-CMAC(ICK, DA ‖ SA ‖ EtherType ‖ EAPOL header ‖ body before the ICV) | 802.1X-2010 9.4.1, 11.11 |
//! | SAK | KDF(CAK, "IEEE8021 SAK", KS-nonce ‖ MIs ‖ KN, len) or random | 802.1X-2010 9.8.1 |
//! | key wrap | RFC 3394 AES-KW with the KEK | 802.1X-2010 9.8.1 |

use super::types::{Ckn, Ki, Mi};
use crate::crypto::keys::{Salt, SecretKey, Ssci};
use crate::wire::sci::{MacAddr, Sci};
use aes::{Aes128, Aes256};
use cmac::{Cmac, KeyInit, Mac};
use zeroize::{Zeroize, Zeroizing};

/// Length of an AES-CMAC tag and of the MKPDU ICV (802.1X-2010 9.4.1).
pub const CMAC_LEN: usize = 16;

/// KDF label for the ICK (802.1X-2010 6.2.3). 12 ASCII octets, no terminating NUL.
pub const LABEL_ICK: &[u8] = b"IEEE8021 ICK";
/// KDF label for the KEK (802.1X-2010 6.2.3).
pub const LABEL_KEK: &[u8] = b"IEEE8021 KEK";
/// KDF label for a derived SAK (802.1X-2010 9.8.1).
pub const LABEL_SAK: &[u8] = b"IEEE8021 SAK";
/// KDF label for a CAK from an EAP MSK (802.1X-2010 6.2.2).
pub const LABEL_EAP_CAK: &[u8] = b"IEEE8021 EAP CAK";
/// KDF label for a CKN from an EAP MSK (802.1X-2010 6.2.2).
pub const LABEL_EAP_CKN: &[u8] = b"IEEE8021 EAP CKN";

/// Error from the key hierarchy and key wrap helpers. Carries no key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MkaCryptoError {
    /// A key (KEK, KDK) had a length AES does not take, or the MSK was too short.
    #[error("key length {0} is not supported here")]
    KeyLength(usize),
    /// Key data to wrap was not a multiple of 8 octets or shorter than 16.
    #[error("key data to wrap must be a multiple of 8 octets, at least 16")]
    WrapLength,
    /// The RFC 3394 integrity check failed: wrong KEK or a corrupted wrapped key.
    #[error("AES key unwrap integrity check failed")]
    UnwrapIntegrity,
    /// A KDF output length outside 1..=8191 octets (L is a 16-bit bit count).
    #[error("KDF output length must be 1..=8191 octets")]
    KdfLength,
}

/// AES-CMAC (RFC 4493, NIST SP 800-38B) over the concatenation of `parts`, keyed with
/// a 128- or 256-bit key.
pub fn aes_cmac(key: &SecretKey, parts: &[&[u8]]) -> [u8; CMAC_LEN] {
    // SecretKey only ever holds 16 or 32 octets, so the key length always fits.
    match key.len() {
        16 => cmac_with::<Aes128>(key.expose_secret(), parts),
        _ => cmac_with::<Aes256>(key.expose_secret(), parts),
    }
}

/// A CMAC instance keyed with `key` (whose length matches `C`) over `parts`.
fn cmac_over<C>(key: &[u8], parts: &[&[u8]]) -> Cmac<C>
where
    Cmac<C>: KeyInit + Mac,
    C: cmac::block_api::CmacCipher,
{
    // Callers pass the key length that matches C.
    let mut mac = <Cmac<C> as KeyInit>::new_from_slice(key).expect("key length matches cipher");
    for p in parts {
        Mac::update(&mut mac, p);
    }
    mac
}

fn cmac_with<C>(key: &[u8], parts: &[&[u8]]) -> [u8; CMAC_LEN]
where
    Cmac<C>: KeyInit + Mac,
    C: cmac::block_api::CmacCipher,
{
    let tag = cmac_over::<C>(key, parts).finalize().into_bytes();
    let mut out = [0u8; CMAC_LEN];
    out.copy_from_slice(&tag);
    out
}

/// The 802.1X-2010 6.2.1 key derivation function (NIST SP 800-108 counter mode with
/// AES-CMAC as the PRF): fills `out` with the first `8 * out.len()` bits of
/// `CMAC(key, i ‖ label ‖ 0x00 ‖ context ‖ L) ‖ …` for i = 1, 2, …, where i is one
/// octet and L is the output length in bits as two big-endian octets.
pub fn kdf(
    key: &SecretKey,
    label: &[u8],
    context: &[u8],
    out: &mut [u8],
) -> Result<(), MkaCryptoError> {
    if out.is_empty() || out.len() > 8191 {
        return Err(MkaCryptoError::KdfLength);
    }
    let bits = ((out.len() * 8) as u16).to_be_bytes();
    for (i, chunk) in out.chunks_mut(CMAC_LEN).enumerate() {
        let counter = [(i + 1) as u8];
        let mut block = Zeroizing::new(aes_cmac(key, &[&counter, label, &[0u8], context, &bits]));
        chunk.copy_from_slice(&block[..chunk.len()]);
        block.zeroize();
    }
    Ok(())
}

fn kdf_key(
    kdk: &SecretKey,
    label: &[u8],
    context: &[u8],
    len: usize,
) -> Result<SecretKey, MkaCryptoError> {
    if len != 16 && len != 32 {
        return Err(MkaCryptoError::KeyLength(len));
    }
    let mut buf = Zeroizing::new([0u8; 32]);
    kdf(kdk, label, context, &mut buf[..len])?;
    SecretKey::from_slice(&buf[..len]).map_err(|_| MkaCryptoError::KeyLength(len))
}

/// The two MAC addresses, numerically lower first (hostap `joint_two_mac`).
fn joint_macs(a: MacAddr, b: MacAddr) -> [u8; 12] {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut out = [0u8; 12];
    out[..6].copy_from_slice(&lo.0);
    out[6..].copy_from_slice(&hi.0);
    out
}

fn msk_kdk(msk: &[u8], cak_len: usize) -> Result<SecretKey, MkaCryptoError> {
    if (cak_len != 16 && cak_len != 32) || msk.len() < cak_len {
        return Err(MkaCryptoError::KeyLength(msk.len()));
    }
    SecretKey::from_slice(&msk[..cak_len]).map_err(|_| MkaCryptoError::KeyLength(cak_len))
}

/// CAK from an EAP MSK (802.1X-2010 6.2.2):
/// `KDF(MSK[0..cak_len], "IEEE8021 EAP CAK", mac_lo ‖ mac_hi, 8 * cak_len)`.
/// Included for completeness; this crate's participant runs with a pre-shared CAK.
pub fn cak_from_msk(
    msk: &[u8],
    mac_a: MacAddr,
    mac_b: MacAddr,
    cak_len: usize,
) -> Result<SecretKey, MkaCryptoError> {
    let kdk = msk_kdk(msk, cak_len)?;
    kdf_key(&kdk, LABEL_EAP_CAK, &joint_macs(mac_a, mac_b), cak_len)
}

/// CKN from an EAP MSK (802.1X-2010 6.2.2):
/// `KDF(MSK[0..cak_len], "IEEE8021 EAP CKN", EAP-Session-Id ‖ mac_lo ‖ mac_hi, 128)`,
/// 16 octets.
pub fn ckn_from_msk(
    msk: &[u8],
    eap_session_id: &[u8],
    mac_a: MacAddr,
    mac_b: MacAddr,
    cak_len: usize,
) -> Result<Ckn, MkaCryptoError> {
    let kdk = msk_kdk(msk, cak_len)?;
    let mut ctx = Vec::with_capacity(eap_session_id.len() + 12);
    ctx.extend_from_slice(eap_session_id);
    ctx.extend_from_slice(&joint_macs(mac_a, mac_b));
    let mut out = [0u8; 16];
    kdf(&kdk, LABEL_EAP_CKN, &ctx, &mut out)?;
    Ckn::new(&out).map_err(|_| MkaCryptoError::KdfLength)
}

/// The KDF context for ICK and KEK: the first 16 octets of the CKN, zero-padded to 16
/// (802.1X-2010 6.2.3; hostap `ieee802_1x_ick_aes_cmac`).
fn ckn_context(ckn: &Ckn) -> [u8; 16] {
    let mut ctx = [0u8; 16];
    let n = ckn.len().min(16);
    ctx[..n].copy_from_slice(&ckn.as_bytes()[..n]);
    ctx
}

/// The ICV Key: `KDF(CAK, "IEEE8021 ICK", CKN[0..16], len(CAK))` (802.1X-2010 6.2.3).
pub fn derive_ick(cak: &SecretKey, ckn: &Ckn) -> SecretKey {
    derive_from_cak(cak, LABEL_ICK, ckn)
}

/// The Key Encrypting Key: `KDF(CAK, "IEEE8021 KEK", CKN[0..16], len(CAK))`
/// (802.1X-2010 6.2.3). hostap uses a KEK as long as the CAK.
pub fn derive_kek(cak: &SecretKey, ckn: &Ckn) -> SecretKey {
    derive_from_cak(cak, LABEL_KEK, ckn)
}

fn derive_from_cak(cak: &SecretKey, label: &[u8], ckn: &Ckn) -> SecretKey {
    let len = cak.len();
    let mut buf = Zeroizing::new([0u8; 32]);
    // Cannot fail: a CAK is 16 or 32 octets, so is the output.
    kdf(cak, label, &ckn_context(ckn), &mut buf[..len]).expect("KDF output length is 16 or 32");
    SecretKey::from_slice(&buf[..len]).expect("CAK is 16 or 32 octets")
}

/// The MKPDU ICV (802.1X-2010 9.4.1): AES-CMAC with the ICK over the frame from the
/// destination address up to (not including) the ICV.
pub fn mkpdu_icv(ick: &SecretKey, covered: &[u8]) -> [u8; CMAC_LEN] {
    aes_cmac(ick, &[covered])
}

/// Checks an MKPDU ICV with the MAC crate's constant-time comparison.
pub fn verify_mkpdu_icv(ick: &SecretKey, covered: &[u8], icv: &[u8]) -> bool {
    let parts: &[&[u8]] = &[covered];
    match ick.len() {
        16 => cmac_over::<Aes128>(ick.expose_secret(), parts).verify_slice(icv),
        _ => cmac_over::<Aes256>(ick.expose_secret(), parts).verify_slice(icv),
    }
    .is_ok()
}

/// How a key server makes a new SAK.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub enum SakGeneration {
    /// `KDF(CAK, "IEEE8021 SAK", KS-nonce ‖ MI of each live peer ‖ own MI ‖ KN, len)`
    /// with a fresh random KS-nonce as long as the SAK (802.1X-2010 9.8.1; hostap
    /// `ieee802_1x_kay_generate_new_sak`). KN is big-endian here, as everywhere on the
    /// wire; hostap copies it in host byte order, which does not matter because
    /// receivers unwrap the SAK and never recompute it.
    #[default]
    Kdf,
    /// A SAK taken straight from the OS random number generator. Equally valid: the
    /// standard only requires the SAK to be fresh and unpredictable.
    Random,
}

/// Derives a SAK (802.1X-2010 9.8.1):
/// `KDF(CAK, "IEEE8021 SAK", ks_nonce ‖ mis… ‖ KN, 8 * sak_len)`.
///
/// `mis` are the MIs in the order the key server lists them (hostap: every live peer,
/// then its own).
pub fn derive_sak(
    cak: &SecretKey,
    ks_nonce: &[u8],
    mis: &[Mi],
    kn: u32,
    sak_len: usize,
) -> Result<SecretKey, MkaCryptoError> {
    let mut ctx = Zeroizing::new(Vec::with_capacity(ks_nonce.len() + 12 * mis.len() + 4));
    ctx.extend_from_slice(ks_nonce);
    for mi in mis {
        ctx.extend_from_slice(&mi.0);
    }
    ctx.extend_from_slice(&kn.to_be_bytes());
    kdf_key(cak, LABEL_SAK, &ctx, sak_len)
}

/// Generates a fresh SAK of `sak_len` octets (16 or 32) with the chosen method.
///
/// # Panics
/// Only if the operating system's random number generator fails.
pub fn generate_sak(
    method: SakGeneration,
    cak: &SecretKey,
    mis: &[Mi],
    kn: u32,
    sak_len: usize,
) -> Result<SecretKey, MkaCryptoError> {
    match method {
        SakGeneration::Random => {
            SecretKey::random(sak_len).map_err(|_| MkaCryptoError::KeyLength(sak_len))
        }
        SakGeneration::Kdf => {
            if sak_len != 16 && sak_len != 32 {
                return Err(MkaCryptoError::KeyLength(sak_len));
            }
            let mut nonce = Zeroizing::new([0u8; 32]);
            getrandom::fill(&mut nonce[..sak_len]).expect("OS random number generator failed");
            derive_sak(cak, &nonce[..sak_len], mis, kn, sak_len)
        }
    }
}

/// An AES-wrapped key as carried in a Distributed SAK or CAK parameter set: the key
/// plus 8 octets of RFC 3394 integrity block (24 or 40 octets). Not secret, but `Debug`
/// prints only the length.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct WrappedKey {
    len: u8,
    bytes: [u8; 40],
}

impl WrappedKey {
    /// Wraps 24 or 40 octets of wrapped-key data.
    pub fn from_slice(b: &[u8]) -> Option<WrappedKey> {
        if b.len() != 24 && b.len() != 40 {
            return None;
        }
        let mut bytes = [0u8; 40];
        bytes[..b.len()].copy_from_slice(b);
        Some(WrappedKey {
            len: b.len() as u8,
            bytes,
        })
    }

    /// The wrapped octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The length in octets (24 or 40).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// The length of the key inside (16 or 32).
    pub fn key_len(&self) -> usize {
        self.len as usize - 8
    }
}

impl core::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "WrappedKey({} octets)", self.len)
    }
}

/// RFC 3394 AES Key Wrap with the default IV A6A6A6A6A6A6A6A6. `kek` may be 16, 24 or
/// 32 octets; `key_data` a multiple of 8 octets, at least 16. Returns `len + 8` octets.
pub fn aes_key_wrap(kek: &[u8], key_data: &[u8]) -> Result<Vec<u8>, MkaCryptoError> {
    if key_data.len() < 16 || !key_data.len().is_multiple_of(8) {
        return Err(MkaCryptoError::WrapLength);
    }
    let mut out = vec![0u8; key_data.len() + 8];
    let r = match kek.len() {
        16 => aes_kw::KwAes128::new_from_slice(kek)
            .map_err(|_| MkaCryptoError::KeyLength(16))?
            .wrap_key(key_data, &mut out)
            .map(|_| ()),
        24 => aes_kw::KwAes192::new_from_slice(kek)
            .map_err(|_| MkaCryptoError::KeyLength(24))?
            .wrap_key(key_data, &mut out)
            .map(|_| ()),
        32 => aes_kw::KwAes256::new_from_slice(kek)
            .map_err(|_| MkaCryptoError::KeyLength(32))?
            .wrap_key(key_data, &mut out)
            .map(|_| ()),
        n => return Err(MkaCryptoError::KeyLength(n)),
    };
    r.map_err(|_| MkaCryptoError::WrapLength)?;
    Ok(out)
}

/// RFC 3394 AES Key Unwrap; the result is zeroized on drop.
pub fn aes_key_unwrap(kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, MkaCryptoError> {
    if wrapped.len() < 24 || !wrapped.len().is_multiple_of(8) {
        return Err(MkaCryptoError::WrapLength);
    }
    let mut out = Zeroizing::new(vec![0u8; wrapped.len() - 8]);
    let r = match kek.len() {
        16 => aes_kw::KwAes128::new_from_slice(kek)
            .map_err(|_| MkaCryptoError::KeyLength(16))?
            .unwrap_key(wrapped, &mut out)
            .map(|_| ()),
        24 => aes_kw::KwAes192::new_from_slice(kek)
            .map_err(|_| MkaCryptoError::KeyLength(24))?
            .unwrap_key(wrapped, &mut out)
            .map(|_| ()),
        32 => aes_kw::KwAes256::new_from_slice(kek)
            .map_err(|_| MkaCryptoError::KeyLength(32))?
            .unwrap_key(wrapped, &mut out)
            .map(|_| ()),
        n => return Err(MkaCryptoError::KeyLength(n)),
    };
    r.map_err(|_| MkaCryptoError::UnwrapIntegrity)?;
    Ok(out)
}

/// Wraps a SAK (or a CAK) with the KEK for a Distributed SAK parameter set
/// (802.1X-2010 9.8.1, 11.11.1): 24 octets for a 128-bit key, 40 for a 256-bit key.
pub fn wrap_sak(kek: &SecretKey, sak: &SecretKey) -> WrappedKey {
    // Cannot fail: KEK and SAK are 16 or 32 octets, giving 24 or 40 wrapped octets.
    let w =
        aes_key_wrap(kek.expose_secret(), sak.expose_secret()).expect("16/32-octet KEK and key");
    WrappedKey::from_slice(&w).expect("24 or 40 wrapped octets")
}

/// Unwraps a SAK received in a Distributed SAK parameter set.
pub fn unwrap_sak(kek: &SecretKey, wrapped: &[u8]) -> Result<SecretKey, MkaCryptoError> {
    let k = aes_key_unwrap(kek.expose_secret(), wrapped)?;
    SecretKey::from_slice(&k).map_err(|_| MkaCryptoError::KeyLength(k.len()))
}

/// The ICK and KEK of one CA, derived once from the CAK and CKN.
pub struct CaKeys {
    /// ICV Key: signs and checks every MKPDU.
    pub ick: SecretKey,
    /// Key Encrypting Key: wraps distributed SAKs.
    pub kek: SecretKey,
}

impl CaKeys {
    /// Derives ICK and KEK (802.1X-2010 6.2.3).
    pub fn derive(cak: &SecretKey, ckn: &Ckn) -> CaKeys {
        CaKeys {
            ick: derive_ick(cak, ckn),
            kek: derive_kek(cak, ckn),
        }
    }
}

impl core::fmt::Debug for CaKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CaKeys(<redacted>)")
    }
}

/// The XPN Salt of a SAK, derived from its Key Identifier the way the SONiC fork of
/// wpa_supplicant does it (notes section 10.6): the key server's 96-bit MI with the
/// **low** 16 bits of KN XORed into octets 0-1 and the **high** 16 bits into octets
/// 2-3. For example, MI 00112233445566778899AABB with KN 1 gives
/// 00102233445566778899AABB.
///
/// 802.1X-2020 9.8.x defines the salt; its exact KN placement could not be checked
/// against a public vector. Keep this the one place to change it.
pub fn xpn_salt(ki: &Ki) -> Salt {
    let mut s = ki.mi.0;
    let kn = ki.kn;
    s[0] ^= (kn >> 8) as u8;
    s[1] ^= kn as u8;
    s[2] ^= (kn >> 24) as u8;
    s[3] ^= (kn >> 16) as u8;
    Salt(s)
}

/// A function that gives the SSCI of `sci` among all members of the CA (`members`
/// includes `sci` itself). Every member must compute the same mapping, so it is a plain
/// function of the member SCIs.
pub type SsciFn = fn(sci: Sci, members: &[Sci]) -> Ssci;

/// The default SSCI assignment: sort the members' SCIs in descending numeric order and
/// number them from 1. For a two-member CA this gives SSCI 1 to the numerically higher
/// SCI and 2 to the lower, as the SONiC fork of wpa_supplicant does (notes 10.6). With
/// more members it is consistent across members as long as they agree on membership.
///
/// A `sci` not in `members` gets the next number after the last member.
pub fn ssci_by_descending_sci(sci: Sci, members: &[Sci]) -> Ssci {
    let higher = members.iter().filter(|m| **m > sci).count();
    Ssci(higher as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn cmac_rfc4493() {
        let k = SecretKey::from_hex("2B7E151628AED2A6ABF7158809CF4F3C").unwrap();
        assert_eq!(
            aes_cmac(&k, &[]).to_vec(),
            h("BB1D6929E95937287FA37D129B756746")
        );
        // Split input gives the same tag as one piece.
        let m =
            h("6BC1BEE22E409F96E93D7E117393172AAE2D8A571E03AC9C9EB76FAC45AF8E5130C81C46A35CE411");
        let t = h("DFA66747DE9AE63030CA32611497C827");
        assert_eq!(aes_cmac(&k, &[&m]).to_vec(), t);
        assert_eq!(aes_cmac(&k, &[&m[..7], &m[7..20], &m[20..]]).to_vec(), t);
    }

    #[test]
    fn ick_kek_psk_8_octet_ckn() {
        let cak = SecretKey::from_hex("135BD758B0EE5C11C55FF6AB19FDB199").unwrap();
        let ckn = Ckn::from_hex("96437A93CCF10D9D").unwrap();
        let k = CaKeys::derive(&cak, &ckn);
        assert_eq!(
            k.ick.expose_secret(),
            &h("58fe48b804b034243a54e4d5f9a3b5fb")[..]
        );
        assert_eq!(
            k.kek.expose_secret(),
            &h("dc0b9bea3c1b3c35722f0cafafff0936")[..]
        );
        assert!(!format!("{k:?}").contains("58fe"));
    }

    #[test]
    fn eap_cak_ckn_and_sak() {
        let msk = h("000102030405060708090A0B0C0D0E0F");
        let own: MacAddr = "02:00:00:00:00:01".parse().unwrap();
        let peer: MacAddr = "02:00:00:00:00:02".parse().unwrap();
        let sid = h("0DAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB");
        let cak = cak_from_msk(&msk, peer, own, 16).unwrap();
        assert_eq!(
            cak.expose_secret(),
            &h("f7c54b9b518839f4453a7415c65d4be3")[..]
        );
        let ckn = ckn_from_msk(&msk, &sid, own, peer, 16).unwrap();
        assert_eq!(ckn.as_bytes(), &h("0d7bf04c08554c23fbd5c5d1a3d4be85")[..]);
        let mis = [
            Mi(h("BC6A009659777A823A90D9E7").try_into().unwrap()),
            Mi(h("718B8A39866B2F5814C9DCF6").try_into().unwrap()),
        ];
        let sak = derive_sak(&cak, &h("404142434445464748494A4B4C4D4E4F"), &mis, 1, 16).unwrap();
        assert_eq!(
            sak.expose_secret(),
            &h("7d47aad43e78237e285df3d57bf5ea8d")[..]
        );
        assert_eq!(
            cak_from_msk(&msk[..8], own, peer, 16).unwrap_err(),
            MkaCryptoError::KeyLength(8)
        );
    }

    #[test]
    fn key_wrap_rfc3394_and_sak_round_trip() {
        let w = aes_key_wrap(
            &h("000102030405060708090A0B0C0D0E0F"),
            &h("00112233445566778899AABBCCDDEEFF"),
        )
        .unwrap();
        assert_eq!(w, h("1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"));
        for (klen, slen) in [(16, 16), (16, 32), (32, 16), (32, 32)] {
            let kek = SecretKey::random(klen).unwrap();
            let sak = SecretKey::random(slen).unwrap();
            let wrapped = wrap_sak(&kek, &sak);
            assert_eq!(wrapped.len(), slen + 8);
            assert_eq!(unwrap_sak(&kek, wrapped.as_bytes()).unwrap(), sak);
            let other = SecretKey::random(klen).unwrap();
            assert_eq!(
                unwrap_sak(&other, wrapped.as_bytes()).unwrap_err(),
                MkaCryptoError::UnwrapIntegrity
            );
        }
        assert_eq!(
            aes_key_unwrap(&[0; 16], &[0; 20]).unwrap_err(),
            MkaCryptoError::WrapLength
        );
        assert_eq!(
            aes_key_wrap(&[0; 15], &[0; 16]).unwrap_err(),
            MkaCryptoError::KeyLength(15)
        );
    }

    #[test]
    fn salt_sonic_placement() {
        let ki = Ki {
            mi: Mi(h("00112233445566778899AABB").try_into().unwrap()),
            kn: 1,
        };
        assert_eq!(xpn_salt(&ki).0.to_vec(), h("00102233445566778899AABB"));
        let ki = Ki {
            mi: Mi([0; 12]),
            kn: 0x1234_5678,
        };
        assert_eq!(xpn_salt(&ki).0[..4], [0x56, 0x78, 0x12, 0x34]);
    }

    #[test]
    fn ssci_two_members() {
        let lo: Sci = "020000000001-0001".parse().unwrap();
        let hi: Sci = "020000000002-0001".parse().unwrap();
        let m = [lo, hi];
        assert_eq!(ssci_by_descending_sci(hi, &m), Ssci(1));
        assert_eq!(ssci_by_descending_sci(lo, &m), Ssci(2));
        let mid: Sci = "020000000001-0002".parse().unwrap();
        let m3 = [hi, lo, mid];
        assert_eq!(ssci_by_descending_sci(mid, &m3), Ssci(2));
        assert_eq!(ssci_by_descending_sci(lo, &m3), Ssci(3));
    }

    #[test]
    fn generated_saks_differ_and_have_the_right_length() {
        let cak = SecretKey::random(16).unwrap();
        for method in [SakGeneration::Kdf, SakGeneration::Random] {
            let a = generate_sak(method, &cak, &[Mi([1; 12])], 1, 32).unwrap();
            let b = generate_sak(method, &cak, &[Mi([1; 12])], 1, 32).unwrap();
            assert_eq!(a.len(), 32);
            assert_ne!(a, b);
        }
        assert!(generate_sak(SakGeneration::Kdf, &cak, &[], 1, 24).is_err());
    }
}
