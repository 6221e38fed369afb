using System.Diagnostics;

namespace CoeffTune.Tests.Cli;

/// <summary>Runs the built coefftune command as a child process, as a user would, on one thread unless OMP_NUM_THREADS says otherwise.</summary>
internal static class CliProcess
{
    public static string Executable => Path.Combine(AppContext.BaseDirectory, "CoeffTune.Cli");

    public static (int Code, string Out, string Err) Run(TimeSpan timeout, params string[] args)
    {
        var psi = new ProcessStartInfo(Executable) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["COEFFTUNE_CACHE"] = CoeffTune.Assets.AssetCache.Default.Root;
        // The tests run side by side on few cores: a child that also spreads over every core only makes them wait on each other.
        if (Environment.GetEnvironmentVariable("OMP_NUM_THREADS") is null) psi.Environment["OMP_NUM_THREADS"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"coefftune {string.Join(" ", args)} did not finish in {timeout}");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
