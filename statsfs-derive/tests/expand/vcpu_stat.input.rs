/// A vCPU's statistics, shaped like KVM's: generic stats flattened into the arch stats.
#[stats(name = "kvm_vcpu")]
struct VcpuStat {
    #[stat(flatten)]
    generic: GenericVcpuStat,
    /// Guest exits, by reason
    exits: Family<ExitReason, Counter>,
    /// Time to handle an exit
    #[stat(unit = seconds, exponent = -9)]
    exit_ns: LogHistogram<32, WithSum>,
    /// Longest run of exits without a halt
    max_streak: Peak<u32>,
    /// Interrupts waiting to be injected
    #[stat(aggregate = [sum, max])]
    pending_irqs: Gauge<i32>,
    /// Whether the vCPU is in guest mode
    guest_mode: Flag,
}
