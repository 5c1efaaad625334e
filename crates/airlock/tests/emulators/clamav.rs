//! ClamAV as the local stack's scanner: the shipped signatures catch EICAR, clean data is
//! clean, and anything clamd cannot scan (too large, an archive that unpacks past its limits)
//! is an error verdict, never a clean one.

use airlock::ports::ByteStream;
use airlock_local::clamav::{CLAMD_MAX_BYTES, Clamd, scan};
use airlock_local::emulators::free_port;
use bytes::Bytes;
use std::io::Write;

fn stream(data: Vec<u8>, chunk: usize) -> ByteStream {
    let chunks: Vec<_> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

#[tokio::test]
async fn verdicts() {
    let dir = airlock_local::testing::log_dir();
    let clamd = Clamd::start(&dir, &dir, 64 * 1024).expect("clamd starts");
    let scanner = clamd.scanner;
    let clean = scanner.scan(stream(b"id,value\n1,2\n".to_vec(), 4)).await;
    assert_eq!(clean.result, "No threats found");
    // EICAR split across chunk boundaries is still found.
    let mut data = vec![b'a'; 1000];
    data.extend_from_slice(airlock_testkit::builders::EICAR.as_bytes());
    let bad = scanner.scan(stream(data, 7)).await;
    assert_eq!(bad.result, "Malicious");
    assert_eq!(bad.malware_names, vec!["Airlock.Test.EICAR.UNOFFICIAL"]);
    // Over clamd's limit: an error verdict, not a clean one.
    let big = scanner
        .scan(stream(vec![b'x'; 512 * 1024], 64 * 1024))
        .await;
    assert!(big.result.starts_with("Error: not scanned"), "{big:?}");
    // A 1 KiB gzip that unpacks to 1 MiB: clamd stops at its scan limit, and says so
    // (without `AlertExceedsMax` it would answer OK for content it never read).
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; 1024 * 1024]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    let v = scanner.scan(stream(bomb, 4096)).await;
    assert!(
        v.result.starts_with("Error: not scanned") && v.result.contains("limit was exceeded"),
        "{v:?}"
    );
    assert!(v.malware_names.is_empty(), "{v:?}");
    // Nobody listening: an error verdict.
    let gone = scan(
        free_port().unwrap(),
        CLAMD_MAX_BYTES,
        stream(b"x".to_vec(), 1),
    )
    .await;
    assert!(
        gone.result.starts_with("Error") && gone.result.contains("unreachable"),
        "{gone:?}"
    );
}
