using TorchSharp;
using CoeffTune.Training;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Training;

public class ProcessMemoryTests
{
    [Fact]
    public void Peak_rises_by_what_a_step_touches_and_resets()
    {
        Assert.True(ProcessMemory.CurrentBytes() > 10_000_000);
        Assert.True(ProcessMemory.ResetPeak());
        long before = ProcessMemory.CurrentBytes();
        using (var big = ones(64, 1024, 1024))                 // 256 MiB, written, so resident
            Assert.Equal(64.0 * 1024 * 1024, big.sum().ToDouble());
        long peak = ProcessMemory.PeakBytes();
        Assert.InRange(peak - before, 200L << 20, 400L << 20);
        Assert.True(ProcessMemory.ResetPeak());
        Assert.True(ProcessMemory.PeakBytes() < peak - (100L << 20), "the high-water mark did not come down after reset");
    }
}
