using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Tests;

internal static class TestUtil
{
    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        using var d = (a - b).abs().max();
        return d.ToDouble();
    }

    public static double[] Values(Tensor t)
    {
        using var c = t.detach().cpu().to_type(ScalarType.Float64).contiguous();
        return c.data<double>().ToArray();
    }
}
