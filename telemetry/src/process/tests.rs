use super::*;

#[test]
fn cpu_time_is_read_after_the_command_name() {
    let stat = "4242 (my (odd) agent) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 8 0";
    assert_eq!(cpu_seconds(stat), Some(3.0));
    assert_eq!(cpu_seconds("garbage"), None);
}

#[test]
fn resident_memory_is_vmrss_in_bytes() {
    let status = "Name:\tagent\nVmPeak:\t  9000 kB\nVmRSS:\t    2048 kB\nThreads:\t8\n";
    assert_eq!(resident_bytes(status), Some(2048 * 1024));
    assert_eq!(resident_bytes("Name:\tkthread\n"), None);
}

#[cfg(target_os = "linux")]
#[test]
fn this_process_is_measured_under_the_standard_names() {
    let sample = Sample::read();
    assert!(sample.resident_bytes.is_some_and(|b| b > 0), "{sample:?}");
    assert!(sample.open_fds.is_some_and(|n| n >= 1), "{sample:?}");

    let mut registry = Registry::with_prefix("switchboard_test");
    let counter = prometheus_client::metrics::counter::Counter::<u64>::default();
    registry.register("things", "Things", counter);
    let text = render_metrics(&registry);
    for name in [
        "switchboard_test_things_total ",
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
    ] {
        assert!(text.contains(&format!("\n{name}")), "{name} missing in:\n{text}");
    }
    assert_eq!(text.matches("# EOF").count(), 1, "{text}");
    assert!(text.ends_with("# EOF\n"));
}
