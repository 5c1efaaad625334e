//! ClamAV as the local stack's scanner: the shipped signatures catch EICAR, clean data is
//! clean, and anything clamd cannot scan is an error verdict, never a clean one.

use airlock::ports::ByteStream;
use airlock_local::clamav::{Clamd, scan};
use airlock_local::emulators::free_port;
use bytes::Bytes;

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
    let clamd = Clamd::start_with_limit(&dir, &dir, 64 * 1024).expect("clamd starts");
    let clean = scan(clamd.port, stream(b"id,value\n1,2\n".to_vec(), 4)).await;
    assert_eq!(clean.result, "No threats found");
    // EICAR split across chunk boundaries is still found.
    let mut data = vec![b'a'; 1000];
    data.extend_from_slice(airlock_testkit::builders::EICAR.as_bytes());
    let bad = scan(clamd.port, stream(data, 7)).await;
    assert_eq!(bad.result, "Malicious");
    assert_eq!(bad.malware_names, vec!["Airlock.Test.EICAR.UNOFFICIAL"]);
    // Over clamd's limit: an error verdict, not a clean one.
    let big = scan(clamd.port, stream(vec![b'x'; 512 * 1024], 64 * 1024)).await;
    assert!(big.result.starts_with("Error"), "{big:?}");
    // Nobody listening: an error verdict.
    let gone = scan(free_port().unwrap(), stream(b"x".to_vec(), 1)).await;
    assert!(
        gone.result.starts_with("Error") && gone.result.contains("unreachable"),
        "{gone:?}"
    );
}
