#[doc(hidden)]
#[allow(non_upper_case_globals, clippy::all)]
const _: () = {
    use ::statsfs::__private as __sf;
    /// How many descriptors.
    const __SF_N: usize = 0 + <GenericVcpuStat as __sf::Stats>::DESCRIPTORS.len()
        + __sf::family_len(
            <ExitReason as __sf::Label>::VALUES.len(),
            <Counter as __sf::StatField>::SUM_AT,
        )
        + (1 + <LogHistogram<32, WithSum> as __sf::StatField>::SUM_AT.is_some() as usize)
        + 1 + 2 + 1;
    const __sf_names_exits: &[u8] = &__sf::join::<
        {
            __sf::joined_len(
                "exits_",
                __sf::Parts::Values(<ExitReason as __sf::Label>::VALUES),
                "",
            )
        },
    >("exits_", __sf::Parts::Values(<ExitReason as __sf::Label>::VALUES), "");
    unsafe impl __sf::Stats for VcpuStat {
        const DESCRIPTORS: &'static [__sf::Descriptor] = &__sf::SchemaBuilder::<
            __SF_N,
        >::new()
            .flatten(
                <GenericVcpuStat as __sf::Stats>::DESCRIPTORS,
                __sf::offset_of!(VcpuStat, generic),
            )
            .family(
                __sf::field(
                        "exits",
                        __sf::offset_of!(VcpuStat, exits),
                        <Counter as __sf::StatField>::INFO,
                    )
                    .with_doc("Guest exits, by reason"),
                __sf::FamilyOf {
                    label: <ExitReason as __sf::Label>::NAME,
                    head: "exits_",
                    parts: __sf::Parts::Values(<ExitReason as __sf::Label>::VALUES),
                    names: __sf_names_exits,
                    sum_names: &[],
                    sum_at: <Counter as __sf::StatField>::SUM_AT,
                    sum_doc: "",
                    stride: __sf::size_of::<Counter>(),
                },
            )
            .push(
                __sf::field(
                        "exit_ns",
                        __sf::offset_of!(VcpuStat, exit_ns),
                        <LogHistogram<32, WithSum> as __sf::StatField>::INFO,
                    )
                    .with_doc("Time to handle an exit")
                    .with_unit(
                        __sf::Unit::Seconds,
                        __sf::Scale {
                            base: __sf::Base::Ten,
                            exponent: -9,
                        },
                    ),
            )
            .sum_of(
                <LogHistogram<32, WithSum> as __sf::StatField>::SUM_AT,
                "exit_ns_sum",
                "Time to handle an exit (the sum of the samples)",
            )
            .push(
                __sf::field(
                        "max_streak",
                        __sf::offset_of!(VcpuStat, max_streak),
                        <Peak<u32> as __sf::StatField>::INFO,
                    )
                    .with_doc("Longest run of exits without a halt"),
            )
            .push(
                __sf::field(
                        "pending_irqs",
                        __sf::offset_of!(VcpuStat, pending_irqs),
                        <Gauge<i32> as __sf::StatField>::INFO,
                    )
                    .with_doc("Interrupts waiting to be injected")
                    .with_aggregation(__sf::Aggregation::Sum),
            )
            .also("pending_irqs_max", __sf::Aggregation::Max)
            .push(
                __sf::field(
                        "guest_mode",
                        __sf::offset_of!(VcpuStat, guest_mode),
                        <Flag as __sf::StatField>::INFO,
                    )
                    .with_doc("Whether the vCPU is in guest mode"),
            )
            .build();
        const SCHEMA: &'static __sf::Schema = &__STATSFS_SCHEMA_VCPUSTAT;
        const CELLS_ONLY: bool = true && <GenericVcpuStat as __sf::Stats>::CELLS_ONLY
            && __sf::inline_cells(<Self as __sf::Stats>::DESCRIPTORS);
        const COMPONENTS: &'static [__sf::Component] = &__sf::ComponentsBuilder::<
            { 0 + 1 + <GenericVcpuStat as __sf::Stats>::COMPONENTS.len() },
        >::new()
            .flatten(
                <GenericVcpuStat as __sf::Stats>::SCHEMA,
                <GenericVcpuStat as __sf::Stats>::COMPONENTS,
                __sf::offset_of!(VcpuStat, generic),
            )
            .build();
        const ZERO: Self = VcpuStat::new();
    }
    const _: fn(
        <ExitReason as __sf::Label>::Array<Counter>,
    ) -> [Counter; <ExitReason as __sf::Label>::VALUES.len()] = |cells| cells;
    const _: () = __sf::check_names::<
        __SF_N,
    >(
        <VcpuStat as __sf::Stats>::DESCRIPTORS,
        0,
        <GenericVcpuStat as __sf::Stats>::DESCRIPTORS.len(),
        "a stat of field `generic` has the name of another stat of `VcpuStat`: a struct flattened twice, or a name it shares with another field; give the flatten a prefix, #[stat(flatten, prefix = \"...\")]",
    );
    const _: () = __sf::check_names::<
        __SF_N,
    >(
        <VcpuStat as __sf::Stats>::DESCRIPTORS,
        0 + <GenericVcpuStat as __sf::Stats>::DESCRIPTORS.len(),
        __sf::family_len(
            <ExitReason as __sf::Label>::VALUES.len(),
            <Counter as __sf::StatField>::SUM_AT,
        ),
        "a stat of field `exits` has the name of another stat of `VcpuStat`: a family member is named <field>_<label value>; rename the field or the other stat",
    );
    const _: () = __sf::check_other_names::<
        __SF_N,
    >(
        <VcpuStat as __sf::Stats>::DESCRIPTORS,
        &[
            (0, <GenericVcpuStat as __sf::Stats>::DESCRIPTORS.len()),
            (
                0 + <GenericVcpuStat as __sf::Stats>::DESCRIPTORS.len(),
                __sf::family_len(
                    <ExitReason as __sf::Label>::VALUES.len(),
                    <Counter as __sf::StatField>::SUM_AT,
                ),
            ),
        ],
        "two stats of this struct have the same name: rename one with #[stat(rename = \"...\")]",
    );
    static __STATSFS_SCHEMA_VCPUSTAT: __sf::Schema = __sf::Schema::new_static(
            "kvm_vcpu",
            ::core::concat!(::core::module_path!(), "::", ::core::stringify!(VcpuStat)),
            <VcpuStat as __sf::Stats>::DESCRIPTORS,
        )
        .with_components(<VcpuStat as __sf::Stats>::COMPONENTS);
    __sf::inventory::submit! {
        __sf::Registration(& __STATSFS_SCHEMA_VCPUSTAT)
    }
    impl VcpuStat {
        /// Every stat at zero; usable in a `static`.
        #[allow(dead_code)]
        pub const fn new() -> Self {
            VcpuStat {
                generic: <GenericVcpuStat as __sf::Stats>::ZERO,
                exits: __sf::Family::from_cells(
                    [<Counter as __sf::StatField>::ZERO; <ExitReason as __sf::Label>::VALUES
                        .len()],
                ),
                exit_ns: <LogHistogram<32, WithSum> as __sf::StatField>::ZERO,
                max_streak: <Peak<u32> as __sf::StatField>::ZERO,
                pending_irqs: <Gauge<i32> as __sf::StatField>::ZERO,
                guest_mode: <Flag as __sf::StatField>::ZERO,
            }
        }
    }
};
