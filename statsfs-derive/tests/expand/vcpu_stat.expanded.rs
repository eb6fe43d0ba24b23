#[doc(hidden)]
#[allow(non_upper_case_globals, clippy::all)]
const _: () = {
    use ::statsfs::__private as __sf;
    unsafe impl __sf::Stats for VcpuStat {
        const DESCRIPTORS: &'static [__sf::Descriptor] = &__sf::SchemaBuilder::<
            { 5 + <GenericVcpuStat as __sf::Stats>::DESCRIPTORS.len() },
        >::new()
            .flatten(
                <GenericVcpuStat as __sf::Stats>::DESCRIPTORS,
                __sf::offset_of!(VcpuStat, generic),
            )
            .push(
                __sf::field::<Counter>("io_out", __sf::offset_of!(VcpuStat, io_out))
                    .with_doc("Guest port writes"),
            )
            .push(
                __sf::field::<
                    LogHistogram<32>,
                >("exit_ns", __sf::offset_of!(VcpuStat, exit_ns))
                    .with_doc("Time to handle an exit")
                    .with_unit(
                        __sf::Unit::Seconds,
                        __sf::Scale {
                            base: __sf::Base::Ten,
                            exponent: -9,
                        },
                    ),
            )
            .push(
                __sf::field::<
                    Peak<u32>,
                >("max_streak", __sf::offset_of!(VcpuStat, max_streak))
                    .with_doc("Longest run of exits without a halt"),
            )
            .push(
                __sf::field::<
                    Gauge<i32>,
                >("pending_irqs", __sf::offset_of!(VcpuStat, pending_irqs))
                    .with_doc("Interrupts waiting to be injected"),
            )
            .push(
                __sf::field::<Flag>("guest_mode", __sf::offset_of!(VcpuStat, guest_mode))
                    .with_doc("Whether the vCPU is in guest mode"),
            )
            .build();
        const SCHEMA: &'static __sf::Schema = &__STATSFS_SCHEMA_VCPUSTAT;
        const CELLS_ONLY: bool = true && <GenericVcpuStat as __sf::Stats>::CELLS_ONLY
            && __sf::inline_cells(<Self as __sf::Stats>::DESCRIPTORS);
    }
    static __STATSFS_SCHEMA_VCPUSTAT: __sf::Schema = __sf::Schema::new_static(
        "kvm_vcpu",
        ::core::concat!(::core::module_path!(), "::", ::core::stringify!(VcpuStat)),
        <VcpuStat as __sf::Stats>::DESCRIPTORS,
    );
    __sf::inventory::submit! {
        __sf::Registration(& __STATSFS_SCHEMA_VCPUSTAT)
    }
};
