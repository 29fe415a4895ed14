//! The space a writer reserves past the end of the log (ADR 0012): kept while appending, never
//! data to any reader, given back at seal, close and open, never taken on a network share.

use opossum_core::{Query, ReadOptions};

use super::support::{event, open, open_with, options, read_all, torn_tail_cuts};
use crate::Repair;
use crate::segment::without_zero_tail;
use crate::vfs::sim::{Cut, SimFs};

const SEGMENT: &str = "/sim/store/events/00000000000000000001.jsonl";
const HEAD: &str = "/sim/store/head.json";

fn segment(fs: &SimFs) -> Vec<u8> {
    fs.read(SEGMENT).unwrap_or_default()
}

#[test]
fn appends_write_into_reserved_space_and_close_gives_it_back() {
    let fs = SimFs::new(21);
    let store = open(&fs).unwrap();
    for n in 1..=5 {
        store.append_blocking(vec![event(n, 50)], None).unwrap();
    }
    let open_bytes = segment(&fs);
    let data = without_zero_tail(&open_bytes).len();
    assert!(
        open_bytes.len() >= 1 << 20 && data < open_bytes.len(),
        "{} bytes of data in a file of {}",
        data,
        open_bytes.len()
    );
    assert_eq!(open_bytes[data - 1], b'\n');
    // Readers see the five events and nothing of the zeros.
    assert_eq!(read_all(&store).unwrap().len(), 5);
    assert!(store.verify().unwrap().is_intact());
    store.close().unwrap();
    let closed = segment(&fs);
    assert_eq!(
        closed.len(),
        data,
        "close cut the file back to its last line"
    );
    assert_eq!(closed.last(), Some(&b'\n'));
}

#[test]
fn a_store_left_with_reserved_space_opens_clean_and_gives_it_back() {
    let fs = SimFs::new(22);
    let store = open(&fs).unwrap();
    for n in 1..=3 {
        store.append_blocking(vec![event(n, 50)], None).unwrap();
    }
    // The machine stops with the space reserved: every acknowledged append is durable.
    let image = fs.power_cut(Cut::DropUnsynced);
    drop(store);
    let reopened = open(&image).unwrap();
    assert!(
        !reopened
            .recovery()
            .repairs
            .iter()
            .any(|r| matches!(r, Repair::TornTailCut { .. })),
        "zeros are not a torn tail: {:?}",
        reopened.recovery()
    );
    assert_eq!(read_all(&reopened).unwrap().len(), 3);
    let bytes = image.read(SEGMENT).unwrap();
    assert_eq!(
        bytes.last(),
        Some(&b'\n'),
        "the open gave the reserved space back"
    );
    // And the next append reserves again, after the third line.
    reopened.append_blocking(vec![event(4, 50)], None).unwrap();
    assert_eq!(read_all(&reopened).unwrap().len(), 4);
    assert!(reopened.verify().unwrap().is_intact());
}

#[test]
fn a_torn_line_followed_by_reserved_zeros_is_cut_and_saved_without_them() {
    let fs = SimFs::new(23);
    let store = open(&fs).unwrap();
    for n in 1..=3 {
        store.append_blocking(vec![event(n, 50)], None).unwrap();
    }
    drop(store);
    // Half a line where the next append went, the reserved zeros after it.
    let mut bytes = segment(&fs);
    let end = without_zero_tail(&bytes).len();
    bytes.truncate(end);
    bytes.extend_from_slice(br#"{"position":4,"type":"Alpha","ta"#);
    bytes.resize(1 << 20, 0);
    fs.write(SEGMENT, &bytes).unwrap();

    let reopened = open(&fs).unwrap();
    let cut = torn_tail_cuts(reopened.recovery())
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no cut: {:?}", reopened.recovery()));
    assert_eq!(cut.0, end as u64);
    assert_eq!(cut.1, 32, "only the torn bytes, not the zeros");
    assert_eq!(
        fs.read(&cut.2).unwrap(),
        br#"{"position":4,"type":"Alpha","ta"#
    );
    assert_eq!(read_all(&reopened).unwrap().len(), 3);
    assert_eq!(segment(&fs).len(), end);
}

#[test]
fn zeros_then_a_stray_line_are_judged_as_a_torn_tail_not_skipped() {
    let fs = SimFs::new(24);
    let store = open(&fs).unwrap();
    for n in 1..=3 {
        store.append_blocking(vec![event(n, 50)], None).unwrap();
    }
    store.close().unwrap();
    let head_of_three = fs.read(HEAD).unwrap();
    let store = open(&fs).unwrap();
    let fourth = {
        // What the fourth append writes, kept by the disk while an earlier page of the same
        // write was lost (zeros, then the rest), and its anchor never written.
        store.append_blocking(vec![event(4, 50)], None).unwrap();
        let bytes = segment(&fs);
        let data = without_zero_tail(&bytes).to_vec();
        let start = data[..data.len() - 1]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        (start, data[start..].to_vec())
    };
    store.close().unwrap();
    let mut bytes = segment(&fs);
    bytes.truncate(fourth.0);
    bytes.resize(fourth.0 + 100, 0);
    bytes.extend_from_slice(&fourth.1[100..]);
    bytes.resize(1 << 20, 0);
    fs.write(SEGMENT, &bytes).unwrap();
    fs.write(HEAD, &head_of_three).unwrap();

    let reopened = open(&fs).unwrap();
    assert!(
        reopened
            .recovery()
            .repairs
            .iter()
            .any(|r| matches!(r, Repair::TornTailCut { .. })),
        "{:?}",
        reopened.recovery()
    );
    assert_eq!(read_all(&reopened).unwrap().len(), 3);
    assert!(reopened.verify().unwrap().is_intact());
}

#[test]
fn nothing_is_reserved_where_clients_may_cache() {
    let fs = SimFs::new(25);
    fs.set_coherent(false);
    let store = open(&fs).unwrap();
    for n in 1..=3 {
        store.append_blocking(vec![event(n, 50)], None).unwrap();
    }
    let bytes = segment(&fs);
    assert_eq!(bytes.last(), Some(&b'\n'), "{} bytes", bytes.len());
    assert_eq!(without_zero_tail(&bytes).len(), bytes.len());
}

#[test]
fn a_new_segment_seals_the_previous_one_at_its_last_line() {
    let fs = SimFs::new(26);
    let store = open_with(&fs, options().segment_target_bytes(4096)).unwrap();
    for n in 1..=40 {
        store.append_blocking(vec![event(n, 200)], None).unwrap();
    }
    let segments: Vec<_> = fs
        .files()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    assert!(segments.len() > 2, "{segments:?}");
    // Every segment but the last (which the writer is filling) ends with its last line.
    for path in &segments[..segments.len() - 1] {
        let bytes = fs.read(path).unwrap();
        assert_eq!(bytes.last(), Some(&b'\n'), "{}", path.display());
    }
    let all = store
        .read_blocking(&Query::all(), ReadOptions::new())
        .unwrap();
    assert_eq!(all.len(), 40);
}
