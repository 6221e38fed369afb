using System.CommandLine;

namespace CoeffTune.Cli.Commands;

/// <summary><c>coefftune bench cost</c>: step time and peak memory of each method with and without Coeff-Tuning.</summary>
public static class CostBenchCommand
{
    public static Command Create()
    {
        var cmd = new Command("cost", "Time and peak memory per training step, each method with and without coeff");
        cmd.SetAction(_ => { Console.Error.WriteLine("error: not implemented yet"); return 1; });
        return cmd;
    }
}
