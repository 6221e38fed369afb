using System.Diagnostics;
using System.Text.Json;
using CoeffTune.Adapters;
using CoeffTune.Assets;
using CoeffTune.Tests.Checkpoints;
using CoeffTune.Tests.Data;
using CoeffTune.Training;
using TorchSharp;
using TorchSharp.PyBridge;

namespace CoeffTune.Tests.Cli;

/// <summary>
/// <c>coefftune train</c> as a real child process that kills itself (SIGKILL, no clean-up) at a chosen point
/// of a checkpoint write, through the writer's fault-injection point (COEFFTUNE_KILL_AT), then resumed with
/// --resume, must end with the adapter of an uninterrupted run, bit for bit. No timing is involved.
/// </summary>
[Collection(RealModelsCollection.Name)]
public sealed class TrainKillResumeTests(RealModelsFixture models)
{
    // 64 examples in batches of 16: 4 steps per epoch; the epoch-end checkpoint is at step 4 of 8.
    private static readonly string[] Flags =
        ["train", "--task", "spam", "--method", "coeff+lora", "--train-size", "64", "--val-size", "16", "--test-size", "16",
         "--epochs", "2", "--max-tokens", "32", "--batch-size", "16", "--seed", "3"];

    [SkippableTheory]
    [InlineData("renamed:1", "step-00000004")]          // right after the first checkpoint is in place
    [InlineData("optimizer.bin:2", "step-00000004")]    // inside the second write: resume falls back to the first
    public void Killed_then_resumed_run_ends_with_the_uninterrupted_adapter_bit_for_bit(string killAt, string complete)
    {
        models.Require("minilm");
        using var tmp = new TempDir();
        var whole = Path.Combine(tmp.Path, "whole");
        var killed = Path.Combine(tmp.Path, "killed");

        Finish(Start([.. Flags, "--out", whole]));

        using (var p = Start([.. Flags, "--out", killed], killAt))
        {
            Assert.True(p.WaitForExit(TimeSpan.FromSeconds(180)), "the run neither finished nor died in 180 s");
            p.WaitForExit();
            Assert.Equal(128 + 9, p.ExitCode);   // killed by SIGKILL
            var checkpoints = Directory.GetDirectories(Path.Combine(killed, Trainer.CheckpointFolder), "step-*").Select(Path.GetFileName).Order().ToList();
            Assert.Equal(complete, checkpoints[0]);
            Assert.False(File.Exists(Path.Combine(killed, FineTune.AdapterFolder, AdapterFile.WeightsName)), "the killed run already wrote its adapter");
        }
        Finish(Start([.. Flags, "--out", killed, "--resume"]));

        var expected = Safetensors.LoadStateDict(Path.Combine(whole, FineTune.AdapterFolder, AdapterFile.WeightsName));
        var actual = Safetensors.LoadStateDict(Path.Combine(killed, FineTune.AdapterFolder, AdapterFile.WeightsName));
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, t) in expected)
            Assert.True(Bytes(t).SequenceEqual(Bytes(actual[name])), $"{name} differs after resume");
        Assert.Equal(FinalLine(whole).GetProperty("test_accuracy").GetDouble(), FinalLine(killed).GetProperty("test_accuracy").GetDouble());
        Assert.Equal(8, FinalLine(killed).GetProperty("steps").GetInt32());
    }

    private static byte[] Bytes(torch.Tensor t) => t.contiguous().bytes.ToArray();

    private static JsonElement FinalLine(string run) =>
        JsonDocument.Parse(File.ReadLines(Path.Combine(run, FineTune.MetricsFile)).Last()).RootElement;

    private static Process Start(string[] args, string? killAt = null)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(CliDll());
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["COEFFTUNE_CACHE"] = AssetCache.Default.Root;
        if (killAt is not null) info.Environment["COEFFTUNE_KILL_AT"] = killAt;
        var p = Process.Start(info)!;
        // Both pipes drained as they fill, so the child never blocks on a full one; stderr kept for failures.
        var err = new System.Text.StringBuilder();
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, e) => { lock (err) err.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        Errors.AddOrUpdate(p, err);
        return p;
    }

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Process, System.Text.StringBuilder> Errors = new();

    private static void Finish(Process p)
    {
        using (p)
        {
            Assert.True(p.WaitForExit(TimeSpan.FromSeconds(180)), "coefftune train did not finish in 180 s");
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, $"coefftune train exited with {p.ExitCode}: {(Errors.TryGetValue(p, out var e) ? e : null)}");
        }
    }

    /// <summary>The CLI assembly: copied beside the tests by the project reference, else the CLI's own build output.</summary>
    private static string CliDll()
    {
        var beside = Path.Combine(AppContext.BaseDirectory, "CoeffTune.Cli.dll");
        if (File.Exists(beside) && File.Exists(Path.Combine(AppContext.BaseDirectory, "CoeffTune.Cli.runtimeconfig.json"))) return beside;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            var built = Path.Combine(d.FullName, "src", "CoeffTune.Cli", "bin", "Release", "net10.0", "linux-x64", "CoeffTune.Cli.dll");
            if (File.Exists(built)) return built;
        }
        throw new FileNotFoundException("CoeffTune.Cli.dll is neither beside the tests nor in src/CoeffTune.Cli/bin/Release");
    }
}
