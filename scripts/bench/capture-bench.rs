//! Runs sioedge capture (test sources, one stream) for a while and reports what it delivered;
//! `scripts/bench-media` measures its CPU time against `gst-launch-1.0` running the same pipelines.
//!
//! `capture-bench [SECS] [WIDTH] [HEIGHT] [FPS]` runs; `capture-bench --print-launch …` prints the
//! video and audio launch lines (one per line) with the appsinks as capture builds them.

#[cfg(feature = "media")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use sioedge::contract::{MediaEvent, TrackKind};
    use sioedge::media::pipeline::{AudioInput, Encoder, audio_launch, video_launch};
    use sioedge::media::{AudioSource, AudioSpec, Capture, VideoSource, VideoSpec, devices};
    use std::time::{Duration, Instant};

    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let print = args.first().is_some_and(|a| a == "--print-launch");
    if print {
        args.remove(0);
    }
    let num = |i: usize, default: u64| -> Result<u64, String> {
        args.get(i).map_or(Ok(default), |a| {
            a.parse().map_err(|e| format!("argument {a:?}: {e}"))
        })
    };
    let secs = num(0, 20)?;
    let video = VideoSpec {
        source: VideoSource::Test,
        width: num(1, 1280)? as u32,
        height: num(2, 720)? as u32,
        fps: num(3, 30)? as u32,
        ..Default::default()
    };
    let audio = AudioSpec {
        source: AudioSource::Test,
        ..Default::default()
    };
    if print {
        sioedge::media::init()?;
        let enc = Encoder::choose(&video, &devices::has_element)?;
        println!(
            "{}",
            video_launch(&video, &devices::resolve_video(&video, enc)?, enc)
        );
        println!("{}", audio_launch(&audio, &AudioInput::Test));
        return Ok(());
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let mut capture = Capture::new(tx)?;
    capture.add_stream("bench", Some(&video), Some(&audio))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    // The same amount of media gst-launch encodes with num-buffers: SECS seconds of each track.
    let want_video = secs * video.fps as u64;
    let want_audio = secs * 1000 / audio.frame_ms as u64;
    let (mut v, mut a, mut bytes) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    rt.block_on(async {
        let end = tokio::time::Instant::from_std(started + Duration::from_secs(secs + 15));
        while v < want_video || a < want_audio {
            let Ok(Some(ev)) = tokio::time::timeout_at(end, rx.recv()).await else {
                break;
            };
            if let MediaEvent::Frame(f) = ev {
                match f.codec.kind() {
                    TrackKind::Video => v += 1,
                    TrackKind::Audio => a += 1,
                }
                bytes += f.data.len() as u64;
            }
        }
    });
    for s in capture.stats() {
        println!(
            "{}/{}: frames={} dropped={} restarts={} merged={}",
            s.stream, s.track, s.frames, s.dropped, s.restarts, s.merged
        );
    }
    println!(
        "received video={v}/{want_video} audio={a}/{want_audio} frames, {bytes} bytes in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if v < want_video || a < want_audio {
        return Err("capture delivered fewer frames than asked".into());
    }
    Ok(())
}

#[cfg(not(feature = "media"))]
fn main() {
    eprintln!("capture-bench needs the `media` feature");
    std::process::exit(2);
}
