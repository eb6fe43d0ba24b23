//! Encoding 100,000 series: statsfs against `prometheus-client` and `measured`, in one
//! criterion run.
//!
//! The series: 100 VMs × 10 vCPUs × 100 counters, each labelled with the source's path,
//! `vm` and `vcpu`, as a statsfs tree of KVM statistics exports them. Every encoder keeps
//! its state between iterations (the statsfs `Encoder`'s buffers, the other crates'
//! registries); each iteration encodes everything once.
//!
//! Run pinned: `taskset -c 1 cargo bench --bench openmetrics`.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use statsfs::openmetrics::{Encoder, Format};
use statsfs::Source;

const VMS: usize = 100;
const VCPUS: usize = 10;
const STATS: usize = 100;
const SERIES: usize = VMS * VCPUS * STATS;

fn statsfs_tree() -> Source {
    common::vcpu_tree(VMS, VCPUS, STATS)
}

mod promclient {
    use prometheus_client::encoding::EncodeLabelSet;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::registry::Registry;

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct Labels {
        path: String,
        vcpu: String,
        vm: String,
    }

    pub fn registry() -> Registry {
        let mut r = Registry::default();
        for s in 0..super::STATS {
            let fam = Family::<Labels, Counter>::default();
            for vm in 0..super::VMS {
                for cpu in 0..super::VCPUS {
                    let l = Labels {
                        path: format!("kvm/{vm}-1/vcpu{cpu}"),
                        vcpu: cpu.to_string(),
                        vm: format!("{vm}-1"),
                    };
                    fam.get_or_create(&l)
                        .inc_by(crate::common::value(vm, cpu, s));
                }
            }
            r.register(format!("vcpu_stat{s}"), "A vCPU counter", fam);
        }
        r
    }
}

mod measured_crate {
    use measured::metric::name::MetricName;
    use measured::metric::MetricFamilyEncoding;
    use measured::text::BufferedTextEncoder;
    use measured::{CounterVec, LabelGroup};

    #[derive(LabelGroup)]
    #[label(set = VcpuLabelsSet)]
    pub struct VcpuLabels<'a> {
        #[label(fixed_with = lasso::RodeoReader)]
        path: &'a str,
        #[label(fixed_with = lasso::RodeoReader)]
        vcpu: &'a str,
        #[label(fixed_with = lasso::RodeoReader)]
        vm: &'a str,
    }

    pub struct Metrics {
        pub names: Vec<String>,
        pub vecs: Vec<CounterVec<VcpuLabelsSet>>,
    }

    fn reader(values: impl Iterator<Item = String>) -> lasso::RodeoReader {
        lasso::Rodeo::from_iter(values).into_reader()
    }

    pub fn metrics() -> Metrics {
        let (vms, vcpus) = (super::VMS, super::VCPUS);
        let paths =
            || (0..vms).flat_map(move |vm| (0..vcpus).map(move |c| format!("kvm/{vm}-1/vcpu{c}")));
        let mut m = Metrics {
            names: Vec::new(),
            vecs: Vec::new(),
        };
        for s in 0..super::STATS {
            let set = VcpuLabelsSet::new(
                reader(paths()),
                reader((0..vcpus).map(|c| c.to_string())),
                reader((0..vms).map(|vm| format!("{vm}-1"))),
            );
            let vec = CounterVec::sparse_with_label_set(set);
            for vm in 0..vms {
                for cpu in 0..vcpus {
                    let (path, c, v) = (
                        format!("kvm/{vm}-1/vcpu{cpu}"),
                        cpu.to_string(),
                        format!("{vm}-1"),
                    );
                    vec.inc_by(
                        VcpuLabels {
                            path: &path,
                            vcpu: &c,
                            vm: &v,
                        },
                        crate::common::value(vm, cpu, s),
                    );
                }
            }
            m.names.push(format!("vcpu_stat{s}_total"));
            m.vecs.push(vec);
        }
        m
    }

    pub fn encode(m: &Metrics, enc: &mut BufferedTextEncoder) -> usize {
        for (name, vec) in m.names.iter().zip(&m.vecs) {
            let name = MetricName::try_from_str(name).unwrap();
            vec.collect_family_into(name, enc).unwrap();
        }
        enc.finish().len()
    }
}

fn bench(c: &mut Criterion) {
    let root = statsfs_tree();
    let roots = [root];
    let mut encoder = Encoder::new();
    let registry = promclient::registry();
    let measured = measured_crate::metrics();
    let mut measured_enc = measured::text::BufferedTextEncoder::new();

    // Same series in every output.
    encoder.encode(&roots, Format::OpenMetrics);
    assert_eq!(encoder.series(), SERIES);
    let mut s = String::new();
    prometheus_client::encoding::text::encode(&mut s, &registry).unwrap();
    assert_eq!(s.lines().filter(|l| !l.starts_with('#')).count(), SERIES);
    let mut m = measured::text::BufferedTextEncoder::new();
    for (name, vec) in measured.names.iter().zip(&measured.vecs) {
        use measured::metric::MetricFamilyEncoding;
        let name = measured::metric::name::MetricName::try_from_str(name).unwrap();
        vec.collect_family_into(name, &mut m).unwrap();
    }
    let bytes = m.finish();
    let text = std::str::from_utf8(&bytes).unwrap();
    assert_eq!(
        text.lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .count(),
        SERIES
    );

    let mut g = c.benchmark_group("encode_100k_series");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.sample_size(30);
    g.bench_function("statsfs_openmetrics", |b| {
        b.iter(|| encoder.encode(&roots, Format::OpenMetrics).len())
    });
    g.bench_function("statsfs_prometheus_text", |b| {
        b.iter(|| encoder.encode(&roots, Format::Prometheus).len())
    });
    struct Nop(u64);
    impl statsfs::Visitor for Nop {
        fn value(&mut self, _: &statsfs::Place<'_>, v: &statsfs::ValueRef<'_>) {
            self.0 = self.0.wrapping_add(v.words[0]);
        }
    }
    g.bench_function("walk_only", |b| {
        b.iter(|| {
            let mut n = Nop(0);
            statsfs::walk(&roots[0], statsfs::WalkOptions::default(), &mut n);
            n.0
        })
    });
    let mut out = String::new();
    g.bench_function("prometheus_client", |b| {
        b.iter(|| {
            out.clear();
            prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
            out.len()
        })
    });
    g.bench_function("measured", |b| {
        b.iter(|| measured_crate::encode(&measured, &mut measured_enc))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
