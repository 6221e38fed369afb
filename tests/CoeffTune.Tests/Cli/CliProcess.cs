using System.Diagnostics;

namespace CoeffTune.Tests.Cli;

/// <summary>Runs the built coefftune command as a child process, as a user would.</summary>
internal static class CliProcess
{
    public static string Executable => Path.Combine(AppContext.BaseDirectory, "CoeffTune.Cli");

    public static (int Code, string Out, string Err) Run(TimeSpan timeout, params string[] args)
    {
        var psi = new ProcessStartInfo(Executable) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["COEFFTUNE_CACHE"] = CoeffTune.Assets.AssetCache.Default.Root;
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
