using System.CommandLine;
using Spectre.Console;

namespace CoeffTune.Cli;

/// <summary>Shared plumbing of the commands: parsing errors as one line, failures as one line.</summary>
public static class Cli
{
    /// <summary>Accepted anywhere on the command line: failures print their full trace, for bug reports.</summary>
    public const string VerboseFlag = "--verbose";

    public static int Run(RootCommand root, string[] args)
    {
        bool verbose = args.Contains(VerboseFlag);
        var parsed = root.Parse(args.Where(a => a != VerboseFlag).ToArray());
        if (parsed.Errors.Count > 0)
        {
            Console.Error.WriteLine($"error: {parsed.Errors[0].Message} (see --help)");
            return 2;
        }
        try
        {
            // Failures print as one line (below), not as System.CommandLine's stack trace.
            return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"error: {Message(e)}");
            bool expected = e is ArgumentException or IOException or InvalidDataException or UnauthorizedAccessException or FormatException
                or CoeffTune.Assets.AssetUnavailableException or CoeffTune.Training.TrainingDivergedException;
            if (verbose) Console.Error.WriteLine(e.ToString());
            else if (!expected) Console.Error.WriteLine($"(an unexpected {e.GetType().Name}; run again with {VerboseFlag} for the trace to report)");
            return 1;
        }
    }

    /// <summary>A failure as the command prints it: <see cref="OneLine"/>, with how to mend it from the command line where that is known.</summary>
    public static string Message(Exception e) => e switch
    {
        CoeffTune.Assets.DamagedAssetException d => Damaged(d.Asset, d.Problem),
        CoeffTune.Checkpoints.MissingHeadCountException => OneLine(e) + " (--heads N)",
        System.Reflection.TargetInvocationException { InnerException: { } inner } => Message(inner),
        _ => OneLine(e),
    };

    /// <summary>A damaged asset in the cache, and the command that fetches it anew.</summary>
    public static string Damaged(string asset, string problem) =>
        $"{asset}: the cached copy is damaged ({problem}); fetch it again with 'coefftune fetch {asset} --force'";

    /// <summary>
    /// Runs <paramref name="body"/>, a library call whose argument errors name the API parameter or setting at fault
    /// (<see cref="ArgumentException.ParamName"/>, e.g. "LearningRate"); such an error is rethrown naming the flag
    /// that sets it (<paramref name="flags"/>: parameter name to flag) instead.
    /// </summary>
    public static T WithFlags<T>(IReadOnlyDictionary<string, string> flags, Func<T> body)
    {
        try
        {
            return body();
        }
        catch (ArgumentException e) when (e.ParamName is { } p && flags.TryGetValue(p, out var flag))
        {
            throw new ArgumentException(FlagMessage(OneLine(e), p, flag), e);
        }
    }

    /// <summary>
    /// A library message about <paramref name="param"/> said with its flag: a message that starts with the setting
    /// ("TrainOptions.LearningRate must be positive, got 0") has it replaced ("--lr must be positive, got 0"); any
    /// other gets the flag in front ("--tasks: 'cifar' is not a task of this bench").
    /// </summary>
    public static string FlagMessage(string message, string param, string flag)
    {
        int end = message.IndexOfAny([' ', ':']);
        var first = end < 0 ? message : message[..end];
        return first == param || first.EndsWith("." + param, StringComparison.Ordinal) ? flag + message[first.Length..] : $"{flag}: {message}";
    }

    /// <summary>
    /// An exception as one line: the first line of its message (native libraries append frame dumps), an
    /// argument's actual value where .NET appends it on lines of its own, and nothing else.
    /// </summary>
    public static string OneLine(Exception e)
    {
        var message = e is ArgumentException a && a.ParamName is { } p ? a.Message.Replace($" (Parameter '{p}')", "") : e.Message;
        var first = message.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0) ?? e.GetType().Name;
        if (e is ArgumentOutOfRangeException { ActualValue: { } v }) first += $" (got {v})";
        if (e is System.Reflection.TargetInvocationException { InnerException: { } inner }) return OneLine(inner);
        return first;
    }

    /// <summary>Writes text to a file atomically: a temporary file beside it, then a rename.</summary>
    public static void WriteAtomic(string path, string text) => CoeffTune.IO.AtomicFile.WriteAllText(path, text);

    public static string Escape(string s) => Markup.Escape(s);

    /// <summary>JSON output keeps non-ASCII text readable (it is still valid, escaped JSON where it must be).</summary>
    public static readonly System.Text.Json.JsonSerializerOptions Json = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
