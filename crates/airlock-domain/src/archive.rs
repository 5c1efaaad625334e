//! What a zip archive holds, from its central directory (the list at the end of the file):
//! entry names, sizes and whether each is encrypted, without unpacking anything. The gates read
//! it from the last bytes of the stream, so a zip of any size is inspected in bounded memory as
//! long as its directory fits in those bytes (ZIP64 included).
//!
//! A leaf of the domain.

/// One entry of a zip's central directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZipEntry {
    pub name: String,
    pub encrypted: bool,
    pub compressed_size: u64,
    pub size: u64,
}

fn u16_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 2)
        .map(|s| u64::from(u16::from_le_bytes([s[0], s[1]])))
}

fn u32_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 4)
        .map(|s| u64::from(u32::from_le_bytes([s[0], s[1], s[2], s[3]])))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8).map(|s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_le_bytes(a)
    })
}

const EOCD: &[u8] = b"PK\x05\x06";
const ZIP64_LOCATOR: &[u8] = b"PK\x06\x07";
const ZIP64_EOCD: &[u8] = b"PK\x06\x06";
const CENTRAL: &[u8] = b"PK\x01\x02";

/// Whether `tail` (the last bytes of a file) ends with a zip's end-of-directory record whose
/// comment runs exactly to the end, as every zip tool writes it: the file is (also) a zip,
/// whatever its first bytes say. A chance `PK\x05\x06` inside other data almost never has
/// a comment length that lands exactly on the end.
pub fn ends_like_a_zip(tail: &[u8]) -> bool {
    let search_from = tail.len().saturating_sub(22 + 65_535);
    (search_from..tail.len().saturating_sub(21)).rev().any(|i| {
        tail[i..].starts_with(EOCD)
            && u16_at(tail, i + 20).is_some_and(|comment| i + 22 + comment as usize == tail.len())
    })
}

/// The entries of a zip whose last `tail.len()` bytes are `tail` and whose length is `total`.
/// An error says why the directory could not be read (not a zip, or its directory starts
/// before `tail`).
pub fn central_directory(tail: &[u8], total: u64) -> Result<Vec<ZipEntry>, String> {
    let start = total.saturating_sub(tail.len() as u64);
    // The end record is in the last 22 + 65535 (comment) bytes.
    let search_from = tail.len().saturating_sub(22 + 65_535);
    let eocd = (search_from..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..].starts_with(EOCD))
        .ok_or("no zip end-of-directory record")?;
    let bad = || "the zip directory is damaged".to_string();
    let mut entries = u16_at(tail, eocd + 10).ok_or_else(bad)?;
    let mut size = u32_at(tail, eocd + 12).ok_or_else(bad)?;
    let mut offset = u32_at(tail, eocd + 16).ok_or_else(bad)?;
    if (entries == 0xFFFF || size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF)
        && eocd >= 20
        && tail[eocd - 20..].starts_with(ZIP64_LOCATOR)
    {
        let record = u64_at(tail, eocd - 20 + 8).ok_or_else(bad)?;
        let at = record
            .checked_sub(start)
            .ok_or("the zip64 directory record is not within the bytes kept")?
            as usize;
        if !tail.get(at..).is_some_and(|t| t.starts_with(ZIP64_EOCD)) {
            return Err(bad());
        }
        entries = u64_at(tail, at + 32).ok_or_else(bad)?;
        size = u64_at(tail, at + 40).ok_or_else(bad)?;
        offset = u64_at(tail, at + 48).ok_or_else(bad)?;
    }
    let from = offset.checked_sub(start).ok_or_else(|| {
        format!("the zip directory ({size} bytes) is larger than the part of the file inspected")
    })? as usize;
    // A zip appended to other data (`cat report.pdf tools.zip`) records offsets from its own
    // start: its directory is then the `size` bytes just before the end record, as unzip
    // finds it ("extra bytes at beginning").
    let from = if tail.get(from..).is_some_and(|t| t.starts_with(CENTRAL)) {
        from
    } else {
        (eocd as u64)
            .checked_sub(size)
            .map(|f| f as usize)
            .filter(|&f| tail[f..].starts_with(CENTRAL))
            .unwrap_or(from)
    };
    let mut at = from;
    let mut out = Vec::new();
    for _ in 0..entries {
        if !tail.get(at..).is_some_and(|t| t.starts_with(CENTRAL)) {
            return Err(bad());
        }
        let flags = u16_at(tail, at + 8).ok_or_else(bad)?;
        let mut compressed_size = u32_at(tail, at + 20).ok_or_else(bad)?;
        let mut uncompressed = u32_at(tail, at + 24).ok_or_else(bad)?;
        let name_len = u16_at(tail, at + 28).ok_or_else(bad)? as usize;
        let extra_len = u16_at(tail, at + 30).ok_or_else(bad)? as usize;
        let comment_len = u16_at(tail, at + 32).ok_or_else(bad)? as usize;
        let name = tail.get(at + 46..at + 46 + name_len).ok_or_else(bad)?;
        let extra = tail
            .get(at + 46 + name_len..at + 46 + name_len + extra_len)
            .ok_or_else(bad)?;
        // ZIP64 extra field (id 1): the sizes that did not fit, in order.
        let mut e = 0;
        while e + 4 <= extra.len() {
            let id = u16_at(extra, e).unwrap_or(0);
            let len = u16_at(extra, e + 2).unwrap_or(0) as usize;
            if id == 1 {
                let mut p = e + 4;
                if uncompressed == 0xFFFF_FFFF {
                    uncompressed = u64_at(extra, p).unwrap_or(uncompressed);
                    p += 8;
                }
                if compressed_size == 0xFFFF_FFFF {
                    compressed_size = u64_at(extra, p).unwrap_or(compressed_size);
                }
            }
            e += 4 + len;
        }
        out.push(ZipEntry {
            name: String::from_utf8_lossy(name).into_owned(),
            encrypted: flags & 1 == 1,
            compressed_size,
            size: uncompressed,
        });
        at += 46 + name_len + extra_len + comment_len;
    }
    Ok(out)
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A stored (uncompressed) zip of `(name, data, encrypted)` entries, as zip tools write it.
    pub fn zip(entries: &[(&str, &[u8], bool)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data, encrypted) in entries {
            let offset = out.len() as u32;
            let flags: u16 = u16::from(*encrypted);
            let local = |sig: &[u8], out: &mut Vec<u8>| {
                out.extend_from_slice(sig);
            };
            local(b"PK\x03\x04", &mut out);
            out.extend_from_slice(&20u16.to_le_bytes());
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes()); // stored
            out.extend_from_slice(&[0; 4]); // time, date
            out.extend_from_slice(&0u32.to_le_bytes()); // crc (not checked here)
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(data);
            central.extend_from_slice(b"PK\x01\x02");
            central.extend_from_slice(&20u16.to_le_bytes());
            central.extend_from_slice(&20u16.to_le_bytes());
            central.extend_from_slice(&flags.to_le_bytes());
            central.extend_from_slice(&0u16.to_le_bytes());
            central.extend_from_slice(&[0; 4]);
            central.extend_from_slice(&0u32.to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 12]); // extra, comment, disk, internal, external(4)
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06");
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    #[test]
    fn reads_names_sizes_and_encryption() {
        let z = zip(&[("a.csv", b"x,y\n", false), ("secret.bin", b"??", true)]);
        let entries = central_directory(&z, z.len() as u64).unwrap();
        assert_eq!(
            entries
                .iter()
                .map(|e| (e.name.as_str(), e.size, e.encrypted))
                .collect::<Vec<_>>(),
            vec![("a.csv", 4, false), ("secret.bin", 2, true)]
        );
        // Only the tail kept: fine while it holds the directory, an error when it does not.
        let tail = &z[z.len() - 140..];
        assert_eq!(central_directory(tail, z.len() as u64).unwrap().len(), 2);
        let tiny = &z[z.len() - 30..];
        assert!(central_directory(tiny, z.len() as u64).is_err());
        assert!(central_directory(b"not a zip at all, not at all", 28).is_err());
        // Damaged directories are errors, never a panic.
        let eocd = z.len() - 22;
        let mut broken = z.clone();
        broken[eocd + 10] += 5; // more entries than the directory holds
        assert!(central_directory(&broken, broken.len() as u64).is_err());
        let mut broken = z.clone();
        broken[eocd + 12] ^= 0x7F; // a size and an offset that both point elsewhere
        broken[eocd + 16] ^= 0x7F;
        assert!(central_directory(&broken, broken.len() as u64).is_err());
        // An offset that is wrong by the bytes in front of the zip (a zip appended to other
        // data) is found where unzip finds it: just before the end record.
        let mut appended = b"%PDF-1.7 and so on\n".to_vec();
        appended.extend(&z);
        assert_eq!(
            central_directory(&appended, appended.len() as u64)
                .unwrap()
                .len(),
            2
        );
    }
}
