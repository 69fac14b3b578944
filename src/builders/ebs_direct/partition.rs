//! Where the root filesystem is on a disk: a GPT or MBR partition, or the whole disk. Pure: the
//! disk's first sectors go in, an extent comes out. The disk is hostile (an AMI's content is not
//! kiln's): every offset is bounds-checked against the disk's size.

const SECTOR: u64 = 512;
/// GPT "Linux root (x86-64)" and "Linux root (ARM64)": the partition to pick when present.
const ROOT_TYPES: [&str; 2] = [
    "4f68bce3-e8cd-4db1-96e7-fbcaf984b709",
    "b921b045-1df0-41c3-af44-4c6f280d3fae",
];
/// GPT "Linux filesystem data".
const LINUX_DATA: &str = "0fc63daf-8483-4772-8e79-3d69d8477de4";
/// How many bytes of the disk's start [`root_extent`] needs: the MBR, the GPT header and 128
/// entries of 128 bytes.
pub const HEAD_BYTES: usize = 34 * SECTOR as usize;

/// A byte range of the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub offset: u64,
    pub size: u64,
}

/// How the root filesystem was found, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    Gpt { partition: usize },
    Mbr { partition: usize },
    WholeDisk,
}

/// The root filesystem's extent on a disk of `disk_size` bytes whose first bytes are `head`
/// (at least [`HEAD_BYTES`], or the whole disk when smaller). GPT: the Linux root partition,
/// else the largest Linux filesystem partition. MBR: the largest Linux (0x83) partition. A
/// disk with neither table is a whole-disk filesystem.
pub fn root_extent(head: &[u8], disk_size: u64) -> Result<(Layout, Extent), String> {
    let mbr_signature = head.len() >= 512 && head[510] == 0x55 && head[511] == 0xaa;
    if head.len() >= 1024 && &head[512..520] == b"EFI PART" {
        return gpt(head, disk_size);
    }
    if mbr_signature {
        let entries: Vec<(u8, u64, u64)> = (0..4)
            .map(|i| {
                let e = &head[446 + 16 * i..446 + 16 * (i + 1)];
                (e[4], le32(&e[8..12]), le32(&e[12..16]))
            })
            .collect();
        if entries.iter().any(|e| e.0 == 0xee) {
            return Err("a protective MBR without a GPT header: the GPT is damaged".into());
        }
        if entries.iter().any(|e| e.0 != 0) {
            let best = entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.0 == 0x83 && e.2 > 0)
                .max_by_key(|(_, e)| e.2)
                .ok_or("an MBR disk without a Linux (0x83) partition")?;
            let extent = checked(best.1.1, best.1.2, disk_size)?;
            return Ok((
                Layout::Mbr {
                    partition: best.0 + 1,
                },
                extent,
            ));
        }
    }
    Ok((
        Layout::WholeDisk,
        Extent {
            offset: 0,
            size: disk_size,
        },
    ))
}

fn gpt(head: &[u8], disk_size: u64) -> Result<(Layout, Extent), String> {
    let h = &head[512..1024];
    let entries_lba = le64(&h[72..80]);
    let count = le32(&h[80..84]).min(128);
    let entry_size = le32(&h[84..88]);
    if !(128..=512).contains(&entry_size) {
        return Err(format!("GPT entry size {entry_size} is not usable"));
    }
    let start = entries_lba
        .checked_mul(SECTOR)
        .filter(|s| *s < head.len() as u64)
        .ok_or("the GPT's partition entries are not at the disk's start")?;
    let mut best: Option<(usize, bool, Extent)> = None;
    for i in 0..count {
        let at = (start + i * entry_size) as usize;
        let Some(e) = head.get(at..at + 128) else {
            break;
        };
        let kind = guid(&e[0..16]);
        let (first, last) = (le64(&e[32..40]), le64(&e[40..48]));
        if kind == "00000000-0000-0000-0000-000000000000" || last < first {
            continue;
        }
        let is_root = ROOT_TYPES.contains(&kind.as_str());
        if !is_root && kind != LINUX_DATA {
            continue;
        }
        let extent = checked(first, last - first + 1, disk_size)?;
        let better = match &best {
            None => true,
            Some((_, root, b)) => (is_root && !root) || (is_root == *root && extent.size > b.size),
        };
        if better {
            best = Some((i as usize + 1, is_root, extent));
        }
    }
    let (partition, _, extent) =
        best.ok_or("a GPT disk without a Linux root or filesystem partition")?;
    Ok((Layout::Gpt { partition }, extent))
}

/// A partition of `sectors` sectors from `first`, inside the disk.
fn checked(first: u64, sectors: u64, disk_size: u64) -> Result<Extent, String> {
    let offset = first.checked_mul(SECTOR);
    let size = sectors.checked_mul(SECTOR);
    match (offset, size) {
        (Some(o), Some(s)) if o > 0 && o.checked_add(s).is_some_and(|end| end <= disk_size) => {
            Ok(Extent { offset: o, size: s })
        }
        _ => Err(format!(
            "a partition (sector {first}, {sectors} sectors) lies outside the {disk_size}-byte disk"
        )),
    }
}

fn le32(b: &[u8]) -> u64 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64
}

fn le64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().unwrap_or_default())
}

/// A GPT GUID (mixed-endian) in its text form.
fn guid(b: &[u8]) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{}",
        u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_le_bytes([b[4], b[5]]),
        u16::from_le_bytes([b[6], b[7]]),
        b[8],
        b[9],
        b[10..16]
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn guid_bytes(text: &str) -> [u8; 16] {
        let hex: String = text.chars().filter(|c| *c != '-').collect();
        let raw: Vec<u8> = (0..16)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let mut out = [0u8; 16];
        out[0..4].copy_from_slice(&[raw[3], raw[2], raw[1], raw[0]]);
        out[4..6].copy_from_slice(&[raw[5], raw[4]]);
        out[6..8].copy_from_slice(&[raw[7], raw[6]]);
        out[8..16].copy_from_slice(&raw[8..16]);
        out
    }

    fn gpt_disk(parts: &[(&str, u64, u64)]) -> Vec<u8> {
        let mut d = vec![0u8; HEAD_BYTES];
        d[446 + 4] = 0xee;
        d[510] = 0x55;
        d[511] = 0xaa;
        d[512..520].copy_from_slice(b"EFI PART");
        d[512 + 72..512 + 80].copy_from_slice(&2u64.to_le_bytes());
        d[512 + 80..512 + 84].copy_from_slice(&128u32.to_le_bytes());
        d[512 + 84..512 + 88].copy_from_slice(&128u32.to_le_bytes());
        for (i, (kind, first, last)) in parts.iter().enumerate() {
            let at = 1024 + 128 * i;
            d[at..at + 16].copy_from_slice(&guid_bytes(kind));
            d[at + 32..at + 40].copy_from_slice(&first.to_le_bytes());
            d[at + 40..at + 48].copy_from_slice(&last.to_le_bytes());
        }
        d
    }

    #[test]
    fn guids_read_back_as_written() {
        assert_eq!(guid(&guid_bytes(LINUX_DATA)), LINUX_DATA);
    }

    #[test]
    fn gpt_prefers_the_root_partition_then_the_largest_linux_one() {
        let esp = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
        let disk = gpt_disk(&[
            (esp, 2048, 4095),
            (LINUX_DATA, 4096, 8191),
            (LINUX_DATA, 8192, 1_000_000),
        ]);
        let (layout, e) = root_extent(&disk, 8 * GIB).unwrap();
        assert_eq!(layout, Layout::Gpt { partition: 3 });
        assert_eq!(
            e,
            Extent {
                offset: 8192 * 512,
                size: (1_000_000 - 8192 + 1) * 512
            }
        );
        let disk = gpt_disk(&[(LINUX_DATA, 8192, 1_000_000), (ROOT_TYPES[0], 2048, 4095)]);
        assert_eq!(
            root_extent(&disk, 8 * GIB).unwrap().0,
            Layout::Gpt { partition: 2 }
        );
    }

    #[test]
    fn hostile_tables_are_refused() {
        let disk = gpt_disk(&[(LINUX_DATA, 2048, u64::MAX / 256)]);
        assert!(root_extent(&disk, 8 * GIB).is_err());
        let disk = gpt_disk(&[(LINUX_DATA, 2048, 20 * GIB / 512)]);
        assert!(root_extent(&disk, 8 * GIB).unwrap_err().contains("outside"));
        let esp = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
        assert!(root_extent(&gpt_disk(&[(esp, 2048, 4095)]), 8 * GIB).is_err());
        let mut damaged = gpt_disk(&[]);
        damaged[512] = 0;
        assert!(
            root_extent(&damaged, 8 * GIB)
                .unwrap_err()
                .contains("damaged")
        );
    }

    #[test]
    fn mbr_takes_the_largest_linux_partition() {
        let mut d = vec![0u8; HEAD_BYTES];
        d[510] = 0x55;
        d[511] = 0xaa;
        let mut entry = |i: usize, kind: u8, first: u32, count: u32| {
            let at = 446 + 16 * i;
            d[at + 4] = kind;
            d[at + 8..at + 12].copy_from_slice(&first.to_le_bytes());
            d[at + 12..at + 16].copy_from_slice(&count.to_le_bytes());
        };
        entry(0, 0x82, 2048, 1000);
        entry(1, 0x83, 4096, 2_000_000);
        let (layout, e) = root_extent(&d, 4 * GIB).unwrap();
        assert_eq!(layout, Layout::Mbr { partition: 2 });
        assert_eq!(
            e,
            Extent {
                offset: 4096 * 512,
                size: 2_000_000 * 512
            }
        );
    }

    #[test]
    fn no_table_is_a_whole_disk_filesystem() {
        let d = vec![0u8; HEAD_BYTES];
        let (layout, e) = root_extent(&d, GIB).unwrap();
        assert_eq!(layout, Layout::WholeDisk);
        assert_eq!(
            e,
            Extent {
                offset: 0,
                size: GIB
            }
        );
    }
}
