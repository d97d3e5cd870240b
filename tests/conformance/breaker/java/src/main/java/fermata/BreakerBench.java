package fermata;

import io.github.resilience4j.circuitbreaker.CircuitBreaker;
import io.github.resilience4j.circuitbreaker.CircuitBreakerConfig;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * The Java half of bench/breaker: the cost of tryAcquirePermission() + onSuccess() on one
 * shared Resilience4j breaker with the default config, as breaker_bench.c measures ours.
 * Run with -t 1 and -t 2 (bench/breaker/run.sh does).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class BreakerBench {
    CircuitBreaker cb;

    @Setup
    public void setup() {
        cb = CircuitBreaker.of("bench", CircuitBreakerConfig.ofDefaults());
    }

    @Benchmark
    public boolean acquireRecord() {
        boolean ok = cb.tryAcquirePermission();
        if (ok) {
            cb.onSuccess(1000, TimeUnit.NANOSECONDS);
        }
        return ok;
    }
}
