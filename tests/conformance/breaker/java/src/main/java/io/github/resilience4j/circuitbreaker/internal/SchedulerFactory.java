package io.github.resilience4j.circuitbreaker.internal;

import java.util.concurrent.ScheduledExecutorService;

/*
 * Test double for Resilience4j's SchedulerFactory (the jar's copy is excluded from the
 * shaded jar, see pom.xml). Resilience4j runs its two automatic transitions on a real
 * scheduler thread; the differential test needs them deterministic, so every breaker gets
 * the harness's ManualScheduler, whose tasks run when the scenario advances the clock
 * past their due time. Nothing else of the library is replaced.
 */
public class SchedulerFactory {
    private static final SchedulerFactory INSTANCE = new SchedulerFactory();
    private static volatile ScheduledExecutorService scheduler;

    private SchedulerFactory() {
    }

    public static SchedulerFactory getInstance() {
        return INSTANCE;
    }

    public static void install(ScheduledExecutorService s) {
        scheduler = s;
    }

    public ScheduledExecutorService getScheduler() {
        if (scheduler == null) {
            throw new IllegalStateException("no scheduler installed");
        }
        return scheduler;
    }
}
