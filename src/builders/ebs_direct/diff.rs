//! Which 512 KiB blocks of the baked disk differ from the base: by content, not by tracking
//! writes (a loop device writes 2–10× more than ends up different: journal replays, rewritten
//! metadata with the same bytes).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

/// The blocks where `base` or `new` (files of one size) hold data: only these can differ, the
/// rest are holes (zeros) in both. Found with SEEK_DATA/SEEK_HOLE, so the diff of a mostly
/// empty 8 GiB disk reads only its few hundred MiB of data, not 16 GiB of zeros.
pub fn candidate_blocks(base: &File, new: &File, block_size: u64) -> io::Result<Vec<u64>> {
    let mut blocks = Vec::new();
    for f in [base, new] {
        for (start, end) in data_extents(f)? {
            blocks.extend(start / block_size..end.div_ceil(block_size));
        }
    }
    blocks.sort_unstable();
    blocks.dedup();
    Ok(blocks)
}

/// `(start, end)` byte ranges holding data.
fn data_extents(f: &File) -> io::Result<Vec<(u64, u64)>> {
    use rustix::fs::{SeekFrom, seek};
    let len = f.metadata()?.len();
    let mut out = Vec::new();
    let mut at = 0u64;
    while at < len {
        let start = match seek(f, SeekFrom::Data(at)) {
            Ok(s) => s,
            Err(rustix::io::Errno::NXIO) => break,
            Err(e) => return Err(e.into()),
        };
        let end = seek(f, SeekFrom::Hole(start)).map_err(io::Error::from)?;
        out.push((start, end.min(len)));
        at = end;
    }
    Ok(out)
}

/// The changed blocks among `candidates`, compared by content.
pub fn changed_among(
    base: &File,
    new: &File,
    candidates: &[u64],
    block_size: usize,
) -> io::Result<Vec<u64>> {
    let mut a = vec![0u8; block_size];
    let mut b = vec![0u8; block_size];
    let mut changed = Vec::new();
    for &index in candidates {
        let offset = index * block_size as u64;
        let got_a = read_at(base, &mut a, offset)?;
        let got_b = read_at(new, &mut b, offset)?;
        a[got_a..].fill(0);
        b[got_b..].fill(0);
        if a != b {
            changed.push(index);
        }
    }
    Ok(changed)
}

fn read_at(f: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The indexes of the `block_size` blocks where `new` differs from `base`. Both are read to the
/// end; a shorter stream reads as zeros past its end (a sparse file's tail), so a block only
/// one side has counts when it is not all zeros.
#[cfg_attr(not(test), allow(dead_code))]
pub fn changed_blocks(
    mut base: impl Read,
    mut new: impl Read,
    block_size: usize,
) -> io::Result<Vec<u64>> {
    let mut a = vec![0u8; block_size];
    let mut b = vec![0u8; block_size];
    let mut changed = Vec::new();
    let mut index = 0u64;
    loop {
        let got_a = fill(&mut base, &mut a)?;
        let got_b = fill(&mut new, &mut b)?;
        if got_a == 0 && got_b == 0 {
            return Ok(changed);
        }
        a[got_a..].fill(0);
        b[got_b..].fill(0);
        if a != b {
            changed.push(index);
        }
        index += 1;
    }
}

/// Reads until `buf` is full or the stream ends; how many bytes were read.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn only_blocks_whose_bytes_differ_are_changed() {
        let base = vec![7u8; 40];
        let mut new = base.clone();
        new[9] = 1; // block 2 (of 4 bytes)
        new[39] = 0; // block 9
        let got = changed_blocks(Cursor::new(&base), Cursor::new(&new), 4).unwrap();
        assert_eq!(got, vec![2, 9]);
        assert!(
            changed_blocks(Cursor::new(&base), Cursor::new(&base), 4)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_missing_tail_reads_as_zeros() {
        let base = vec![0u8; 6];
        let new = vec![0u8, 0, 0, 0, 0, 0, 0, 0, 0, 5];
        assert_eq!(
            changed_blocks(Cursor::new(&base), Cursor::new(&new), 4).unwrap(),
            vec![2]
        );
        let zeros = vec![0u8; 12];
        assert!(
            changed_blocks(Cursor::new(&base), Cursor::new(&zeros), 4)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn the_sparse_diff_agrees_with_the_full_one() {
        let dir = tempfile::tempdir().unwrap();
        let (pa, pb) = (dir.path().join("a"), dir.path().join("b"));
        let block = 4096usize;
        let a = File::create(&pa).unwrap();
        a.set_len(64 * block as u64).unwrap();
        a.write_all_at(&[1u8; 10], 3 * block as u64).unwrap();
        a.write_all_at(&[2u8; 10], 40 * block as u64).unwrap();
        std::fs::copy(&pa, &pb).unwrap();
        let b = std::fs::OpenOptions::new().write(true).open(&pb).unwrap();
        b.write_all_at(&[9u8; 1], 40 * block as u64 + 5).unwrap();
        b.write_all_at(&[7u8; 1], 60 * block as u64).unwrap();
        let (a, b) = (File::open(&pa).unwrap(), File::open(&pb).unwrap());
        let candidates = candidate_blocks(&a, &b, block as u64).unwrap();
        let sparse = changed_among(&a, &b, &candidates, block).unwrap();
        let full =
            changed_blocks(File::open(&pa).unwrap(), File::open(&pb).unwrap(), block).unwrap();
        assert_eq!(sparse, vec![40, 60]);
        assert_eq!(sparse, full);
    }

    #[test]
    fn a_partial_last_block_is_compared_padded() {
        let base = vec![1u8; 5];
        let mut new = base.clone();
        new[4] = 2;
        assert_eq!(
            changed_blocks(Cursor::new(&base), Cursor::new(&new), 4).unwrap(),
            vec![1]
        );
    }
}
