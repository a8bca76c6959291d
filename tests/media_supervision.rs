//! Supervision: failing video pipelines are restarted with backoff and recover, while the audio
//! track of the same stream keeps flowing.
#![cfg(feature = "media")]

mod media_support;

use media_support::{Run, assert_monotonic};
use sioedge::contract::MediaEvent;
use sioedge::media::{AudioSource, AudioSpec, VideoEncoder, VideoSpec};
use std::time::{Duration, Instant};

fn audio() -> AudioSpec {
    AudioSpec {
        source: AudioSource::Test,
        frame_ms: 20,
        ..Default::default()
    }
}

fn video_from(pipeline: &str, width: u32, height: u32) -> VideoSpec {
    VideoSpec {
        pipeline: Some(pipeline.to_string()),
        width,
        height,
        fps: 30,
        encoder: VideoEncoder::X264,
        ..Default::default()
    }
}

/// Audio of stream `s` is continuous (every pts exactly one frame after the previous one), never
/// went down, and delivered frames inside each `[from, to]` outage window.
fn assert_audio_unaffected(run: &Run, outages: &[(Instant, Instant)]) {
    assert!(run.downs("s", "audio").is_empty(), "audio went down");
    assert_eq!(run.ups("s", "audio").len(), 1);
    let frames = run.frames("s", "audio");
    assert_monotonic(&frames);
    for w in frames[1..].windows(2) {
        assert_eq!(w[1].1.pts - w[0].1.pts, 20_000, "audio gap");
    }
    for (from, to) in outages {
        let during = frames.iter().filter(|(at, _)| at > from && at < to).count();
        let expected = to.duration_since(*from).as_millis() as usize / 20;
        assert!(
            during * 10 >= expected * 7,
            "{during} audio frames during a {expected}-frame outage"
        );
    }
}

#[test]
fn erroring_pipeline_restarts_with_doubling_backoff_and_audio_keeps_flowing() {
    let mut run = Run::new();
    let video = video_from(
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! identity error-after=45 name=flaky",
        320,
        240,
    );
    run.capture()
        .add_stream("s", Some(&video), Some(&audio()))
        .unwrap();
    let mut ups = 0;
    let third_up = run.wait_for(Duration::from_secs(25), |e| {
        matches!(e, MediaEvent::TrackUp { info, .. } if info.track == "video") && {
            ups += 1;
            ups == 3
        }
    });
    assert!(third_up, "video did not come back twice");
    run.collect(Duration::from_millis(300));
    let t = Instant::now();
    let stats = run.stop();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "stop took {:?}",
        t.elapsed()
    );

    let ups = run.ups("s", "video");
    let downs = run.downs("s", "video");
    assert!(downs.len() >= 2, "{} TrackDown", downs.len());
    for (_, reason) in &downs {
        assert!(
            reason.starts_with("flaky: "),
            "reason names the element: {reason}"
        );
    }
    // backoff: 1 s after the first failure, 2 s after the second (plus pipeline startup)
    let gap1 = ups[1].0 - downs[0].0;
    let gap2 = ups[2].0 - downs[1].0;
    assert!(
        gap1 >= Duration::from_millis(900) && gap1 < Duration::from_millis(2500),
        "{gap1:?}"
    );
    assert!(
        gap2 >= Duration::from_millis(1900) && gap2 < Duration::from_millis(3500),
        "{gap2:?}"
    );
    assert!(
        gap2 > gap1 + Duration::from_millis(700),
        "{gap1:?} then {gap2:?}"
    );

    // per run: TrackUp, then frames starting with a keyframe, at most 45 of them, then TrackDown
    let mut in_run = None;
    for s in &run.seen {
        match &s.event {
            MediaEvent::TrackUp { info, .. } if info.track == "video" => in_run = Some(0),
            MediaEvent::TrackDown { track, .. } if &**track == "video" => in_run = None,
            MediaEvent::Frame(f) if &*f.track == "video" => {
                let n = in_run
                    .as_mut()
                    .expect("video frame outside a TrackUp..TrackDown run");
                assert!(*n > 0 || f.key, "a run starts with a keyframe");
                *n += 1;
                assert!(*n <= 45);
            }
            _ => {}
        }
    }
    let video_frames = run.frames("s", "video");
    assert_monotonic(&video_frames);
    // the outage shows up as a pts gap of at least the backoff
    let jumps = video_frames
        .windows(2)
        .filter(|w| w[1].1.pts - w[0].1.pts > 900_000)
        .count();
    assert!(jumps >= 2, "{jumps} pts gaps");

    assert_audio_unaffected(&run, &[(downs[0].0, ups[1].0), (downs[1].0, ups[2].0)]);
    let video_stats = stats.iter().find(|s| &*s.track == "video").unwrap();
    let audio_stats = stats.iter().find(|s| &*s.track == "audio").unwrap();
    assert!(video_stats.restarts >= 2, "{video_stats:?}");
    assert_eq!(audio_stats.restarts, 0);
}

#[test]
fn missing_source_is_retried_until_it_appears_then_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("camera.yuv");
    let mut run = Run::new();
    let video = video_from(
        &format!(
            "multifilesrc location={} loop=true ! rawvideoparse width=64 height=48 format=i420 framerate=30/1 ! clocksync",
            file.display()
        ),
        64,
        48,
    );
    run.capture()
        .add_stream("s", Some(&video), Some(&audio()))
        .unwrap();
    assert!(run.wait_for(Duration::from_secs(15), |e| matches!(
        e,
        MediaEvent::TrackDown { .. }
    )));
    let (down_at, reason) = run.downs("s", "video")[0];
    assert!(reason.contains("multifilesrc"), "{reason}");
    assert!(reason.contains("camera.yuv"), "{reason}");
    run.collect(Duration::from_millis(2500));
    // the "camera" comes back
    std::fs::write(&file, vec![128u8; 64 * 48 * 3 / 2]).unwrap();
    assert!(
        run.wait_for(
            Duration::from_secs(10),
            |e| matches!(e, MediaEvent::TrackUp { info, .. } if info.track == "video")
        ),
        "video did not recover"
    );
    let up_at = run.ups("s", "video")[0].0;
    run.collect(Duration::from_secs(2));
    let stats = run.stop();

    assert_eq!(
        run.downs("s", "video").len(),
        1,
        "one TrackDown while the device stays missing"
    );
    let after: Vec<_> = run.frames("s", "video");
    assert!(
        after.len() >= 50,
        "{} frames in the 2 s after recovery",
        after.len()
    );
    assert!(after[0].1.key);
    let video_stats = stats.iter().find(|s| &*s.track == "video").unwrap();
    assert!(
        video_stats.restarts >= 2 && video_stats.up,
        "{video_stats:?}"
    );
    assert_audio_unaffected(&run, &[(down_at, up_at)]);
}

#[test]
fn absent_v4l2_device_is_reported_and_retried() {
    let mut run = Run::new();
    let video = VideoSpec {
        source: sioedge::media::VideoSource::V4l2("/dev/video99".into()),
        width: 320,
        height: 240,
        ..Default::default()
    };
    run.capture()
        .add_stream("s", Some(&video), Some(&audio()))
        .unwrap();
    assert!(run.wait_for(Duration::from_secs(15), |e| matches!(
        e,
        MediaEvent::TrackDown { .. }
    )));
    let down_at = run.downs("s", "video")[0].0;
    run.collect(Duration::from_millis(3500));
    let stats = run.stop();
    let downs = run.downs("s", "video");
    assert_eq!(downs.len(), 1);
    assert!(downs[0].1.contains("/dev/video99"), "{}", downs[0].1);
    assert!(run.frames("s", "video").is_empty());
    let video_stats = stats.iter().find(|s| &*s.track == "video").unwrap();
    assert!(
        video_stats.restarts >= 2,
        "retried at 1 s and 3 s: {video_stats:?}"
    );
    assert_audio_unaffected(&run, &[(down_at, Instant::now())]);
}
